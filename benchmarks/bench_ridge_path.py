"""The eigendecomposition behind StreamingRidgeCV's penalty path: threads.

``StreamingRidgeCV`` solves every penalty from one symmetric
eigendecomposition of the normal equations (``scipy.linalg.eigh``, LAPACK's
tridiagonal reduction: level-2 BLAS, a thread barrier per column). This
prints its wall and CPU time for systems of the sizes the package meets (256
to 3072 features) with the BLAS on one thread and on all of them, and their
ratio, in one run. Run it on an idle machine and again with two busy
processes (``--busy 2`` starts them) to see both sides.

    python benchmarks/bench_ridge_path.py
    python benchmarks/bench_ridge_path.py --busy 2
"""

import argparse
import multiprocessing
import os
import time

import numpy as np
from scipy import linalg
from threadpoolctl import threadpool_info, threadpool_limits


def _spin():
    while True:
        pass


def timed(system, threads, repeats, use_torch=False):
    """Best wall time and its CPU time of ``eigh(system)`` on ``threads``."""
    import torch

    best = (np.inf, np.inf)
    for _ in range(repeats):
        with threadpool_limits(threads, user_api="blas"):
            cpu, wall = time.process_time(), time.perf_counter()
            if use_torch:
                torch.linalg.eigh(torch.from_numpy(system))
            else:
                linalg.eigh(system)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        best = min(best, (wall, cpu))
    return best


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="256,1536,3072")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--busy", type=int, default=0, help="busy processes to start")
    args = parser.parse_args()
    busy = [
        multiprocessing.Process(target=_spin, daemon=True) for _ in range(args.busy)
    ]
    for process in busy:
        process.start()
    blas = [i for i in threadpool_info() if i["user_api"] == "blas"]
    n_threads = max(i["num_threads"] for i in blas)
    names = ", ".join(sorted({f"{i['internal_api']} {i['version']}" for i in blas}))
    print(
        f"{os.cpu_count()} cores, BLAS {names} ({n_threads} threads), "
        f"{args.busy} busy processes, load average "
        f"{os.getloadavg()[0]:.1f}"
    )
    print(f"{'features':>8} {'1 thread wall/CPU (s)':>22} "
          f"{f'{n_threads} threads wall/CPU (s)':>24} {'wall ratio':>11} "
          f"{'torch (MKL) wall/CPU (s)':>25}")
    rng = np.random.default_rng(0)
    for size in map(int, args.sizes.split(",")):
        features = rng.standard_normal((2 * size, size))
        system = features.T @ features
        one = timed(system, 1, args.repeats)
        many = timed(system, n_threads, args.repeats)
        mkl = timed(system, n_threads, args.repeats, use_torch=True)
        print(f"{size:>8} {one[0]:>11.2f} / {one[1]:<8.2f} "
              f"{many[0]:>12.2f} / {many[1]:<9.2f} {many[0] / one[0]:>10.2f}x "
              f"{mkl[0]:>13.2f} / {mkl[1]:<9.2f}")
    for process in busy:
        process.terminate()


if __name__ == "__main__":
    main()
