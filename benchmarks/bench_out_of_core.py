"""Peak memory and wall time of diffusion features -> StreamingRidgeCV over
Lorenz 63 states read from a memmap, against the in-memory path.

The memmap path never holds the feature matrix: StreamingRidgeCV transforms
each chunk of states with the (frozen) featurizer, adds it to the normal
equations and drops it. The in-memory path loads the states, materialises
``featurizer.transform(X)`` and fits the ridge on it. Each path runs in its
own process, so each peak resident set size (ru_maxrss) is its own. The
featurizer is the paper's network (256 units, 3 blocks, six times: 1536
features), briefly trained: the cost of a transform does not depend on the
weights. ``--featurizer rff`` puts random Fourier features (1536, the
paper's baseline) in its place: the same number of features, so the same
memory, at a fraction of the transform's cost (the normal equations then
take most of the time). ``--states DIR`` reuses the ``X.npy`` and ``y.npy``
of an earlier run (hard links into the run's folder).

    python benchmarks/bench_out_of_core.py --n-states 200000
    python benchmarks/bench_out_of_core.py --n-states 16000000 --paths memmap
    python benchmarks/bench_out_of_core.py --n-states 16000000 --paths memmap \
        --featurizer rff
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import joblib
import numpy as np


def make_states(folder, n_states, n_trajectories):
    """Lorenz 63 states and 0.1-MTU increments, written trajectory by trajectory."""
    from skdiffusion.datasets import make_lorenz63

    X = np.lib.format.open_memmap(
        os.path.join(folder, "X.npy"), "w+", np.float32, (n_states, 3)
    )
    y = np.lib.format.open_memmap(
        os.path.join(folder, "y.npy"), "w+", np.float32, (n_states, 3)
    )
    per_trajectory = -(-n_states // n_trajectories)
    for i, start in enumerate(range(0, n_states, per_trajectory)):
        stop = min(start + per_trajectory, n_states)
        data = make_lorenz63(
            1, stop - start + 10, random_state=i, dtype=np.float32, cache=False
        )
        X[start:stop], y[start:stop] = data.X, data.y
    X.flush()
    y.flush()


def make_featurizer(folder, kind):
    from skdiffusion import DiffusionFeaturizer, RFFFeaturizer

    X = np.load(os.path.join(folder, "X.npy"), mmap_mode="r")[:20_000]
    if kind == "rff":
        featurizer = RFFFeaturizer(1536, random_state=0)
    else:
        featurizer = DiffusionFeaturizer(
            max_iter=20, batch_size=1024, random_state=0, device="cpu",
            dtype="float32",
        )
    featurizer.fit(np.asarray(X))
    joblib.dump(featurizer, os.path.join(folder, "featurizer.joblib"))


def ridge(transformer, chunk_size):
    from skdiffusion import StreamingRidgeCV

    return StreamingRidgeCV(
        alphas=tuple(10.0**k for k in range(-8, 1)),
        transformer=transformer,
        chunk_size=chunk_size,
        standardize=True,
        random_state=0,
    )


def run_path(folder, path, chunk_size):
    """One path in this process; its wall time and peak RSS as JSON."""
    import warnings

    from sklearn.frozen import FrozenEstimator

    warnings.simplefilter("ignore", UserWarning)  # alpha at the grid's edge
    featurizer = joblib.load(os.path.join(folder, "featurizer.joblib"))
    start = time.perf_counter()
    X = np.load(os.path.join(folder, "X.npy"), mmap_mode="r")
    y = np.load(os.path.join(folder, "y.npy"), mmap_mode="r")
    if path == "memmap":
        model = ridge(FrozenEstimator(featurizer), chunk_size).fit(X, y)
    else:
        X, y = np.array(X), np.array(y)
        features = featurizer.transform(X)
        model = ridge(None, chunk_size).fit(features, y)
    wall = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: kB
    print(json.dumps({"wall": wall, "peak": peak, "alpha": model.alpha_}))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-states", type=int, default=200_000)
    parser.add_argument("--n-trajectories", type=int, default=16)
    parser.add_argument("--chunk-size", type=int, default=4096)
    parser.add_argument(
        "--paths", nargs="+", default=["memory", "memmap"], choices=["memory", "memmap"]
    )
    parser.add_argument(
        "--featurizer", default="diffusion", choices=["diffusion", "rff"]
    )
    parser.add_argument("--folder", help="where the memmaps go (default: a temp dir)")
    parser.add_argument("--states", help="a folder with X.npy and y.npy to reuse")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run_path(args.folder, args.child, args.chunk_size)
        return
    with tempfile.TemporaryDirectory(dir=args.folder) as folder:
        start = time.perf_counter()
        if args.states:
            for name in ("X.npy", "y.npy"):
                os.link(os.path.join(args.states, name), os.path.join(folder, name))
            n_states = len(np.load(os.path.join(folder, "X.npy"), mmap_mode="r"))
            if n_states != args.n_states:
                raise SystemExit(f"--states: {n_states} states, not {args.n_states}")
        else:
            make_states(folder, args.n_states, args.n_trajectories)
        make_featurizer(folder, args.featurizer)
        print(
            f"{args.n_states:,} Lorenz 63 states x 1536 {args.featurizer} features "
            f"({args.n_states * 1536 * 4 / 1e9:.2f} GB in float32), chunks of "
            f"{args.chunk_size}; data and featurizer "
            f"{time.perf_counter() - start:.0f} s",
            flush=True,
        )
        print(f"{'path':<8}{'wall (s)':>10}{'peak RSS (GB)':>15}{'alpha':>9}")
        for path in args.paths:
            command = [
                sys.executable,
                __file__,
                "--child",
                path,
                "--folder",
                folder,
                "--chunk-size",
                str(args.chunk_size),
            ]
            out = subprocess.run(command, capture_output=True, text=True, check=True)
            result = json.loads(out.stdout.strip().splitlines()[-1])
            print(
                f"{path:<8}{result['wall']:>10.1f}{result['peak'] / 1e9:>15.2f}"
                f"{result['alpha']:>9.0e}",
                flush=True,
            )


if __name__ == "__main__":
    main()
