"""Transform throughput of RFFFeaturizer against sklearn's RBFSampler.

Both map states to ``n_components`` random Fourier features of the same
Gaussian kernel; a user who does not need the paper's exact sin/cos features
would pick ``RBFSampler``. The two are timed in the same run, interleaved,
and the median of the repeats is reported with the ratio, for wall time and
for the process's CPU time (all threads): on a shared machine the wall time
depends on the other jobs, the CPU time much less. ``RFFFeaturizer`` is also
timed limited to one thread (``threadpoolctl.threadpool_limits(1)``), since
its float64 sin/cos run on torch's thread pool.

    python benchmarks/bench_rff.py            # 200,000 x 3 -> 1536
    python benchmarks/bench_rff.py --quick    # 20,000 x 3 -> 1536

float64 features take twice the memory of float32 ones, so float64 is timed
on a quarter of the rows.
"""

import argparse
import time

import numpy as np
from sklearn.kernel_approximation import RBFSampler
from threadpoolctl import ThreadpoolController

from skdiffusion import RFFFeaturizer


def median_seconds(transforms, X, repeats):
    """Median (wall, CPU) seconds of each transform on X, runs interleaved.

    The order rotates from one repeat to the next, so that a transform's
    place in the round does not bias its time.
    """
    times = {name: [] for name in transforms}
    names = list(transforms)
    for repeat in range(repeats):
        shift = repeat % len(names)
        for name in names[shift:] + names[:shift]:
            wall, cpu = time.perf_counter(), time.process_time()
            features = transforms[name](X)
            times[name].append(
                (time.perf_counter() - wall, time.process_time() - cpu)
            )
            del features
    return {name: np.median(t, axis=0) for name, t in times.items()}


def one_thread(transform, controller):
    def limited(X):
        with controller.limit(limits=1):
            return transform(X)

    return limited


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small size")
    parser.add_argument("--n-samples", type=int, default=None)
    parser.add_argument("--n-components", type=int, default=1536)
    # a multiple of the 3 transforms: each runs as often in each place
    parser.add_argument("--repeats", type=int, default=6)
    args = parser.parse_args()
    n_samples = args.n_samples or (20_000 if args.quick else 200_000)
    wavelength = 1.0
    gamma = 2 * np.pi**2 / wavelength**2  # the kernel both approximate
    controller = ThreadpoolController()

    print(f"states x 3 -> {args.n_components} features, "
          f"median of {args.repeats} interleaved runs")
    for dtype, n in [(np.float32, n_samples), (np.float64, max(1, n_samples // 4))]:
        name = np.dtype(dtype).name
        X = np.random.default_rng(0).normal(size=(n, 3)).astype(dtype)
        rff = RFFFeaturizer(args.n_components, wavelength=wavelength, random_state=0)
        rbf = RBFSampler(gamma=gamma, n_components=args.n_components, random_state=0)
        transforms = {
            "RFFFeaturizer": rff.fit(X).transform,
            "RFF, 1 thread": one_thread(rff.transform, controller),
            "RBFSampler": rbf.fit(X).transform,
        }
        transforms["RFFFeaturizer"](X[:10])  # warm-up: first-call library set-up
        seconds = median_seconds(transforms, X, args.repeats)
        print(f"{name}: {n:,} states")
        for method, (wall, cpu) in seconds.items():
            print(f"  {name:8s} {method:14s} {wall:7.3f} s wall "
                  f"({n / wall:10,.0f} states/s)  {cpu:7.3f} s CPU")
        for method in ["RFFFeaturizer", "RFF, 1 thread"]:
            wall, cpu = seconds["RBFSampler"] / seconds[method]
            print(f"  {name:8s} {method} is {wall:.2f}x as fast as RBFSampler "
                  f"in wall time, {cpu:.2f}x in CPU time")


if __name__ == "__main__":
    main()
