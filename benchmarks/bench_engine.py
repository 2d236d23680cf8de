"""Training speed of every torch estimator against an earlier commit's code.

The package trains all its torch estimators with one loop
(:mod:`skdiffusion.engine`). This benchmark checks that the loop costs
nothing against the code of an earlier commit (by default the last one
with separate loops): it times ``fit`` of ``DiffusionFeaturizer`` (its
default recipe) and of ``DenseRegressor`` / ``ResidualRegressor`` (256
units, batches of 256) for the same number of optimiser steps, each in a
fresh process, old and new interleaved, and prints optimiser steps per
second (wall clock and CPU time, best of the repeats) and the ratio
new / old (above 1: the new code is faster).

    python benchmarks/bench_engine.py [--baseline REV] [--repeats N] [--steps N]
        [--estimators DenseRegressor,...]

The baseline is checked out with ``git worktree`` into a temporary folder.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BASELINE = "8567956"  # the last commit with two training loops

# Runs in a child process with the package under test first on sys.path.
# Regressors of the old code count max_iter in epochs: the child converts,
# so both train the same number of steps.
CHILD = r"""
import json, math, sys, time, warnings
import numpy as np, torch
warnings.simplefilter("ignore")
torch.set_num_threads(int(sys.argv[3]))
import skdiffusion
from skdiffusion import DenseRegressor, DiffusionFeaturizer, ResidualRegressor
name, steps = sys.argv[1], int(sys.argv[2])
rng = np.random.default_rng(0)
X = rng.normal(size=(20_000, 3))
y = np.sin(X) + X[:, [1, 2, 0]]
old = not hasattr(skdiffusion, "engine")
if name == "DiffusionFeaturizer":
    model, data = DiffusionFeaturizer(max_iter=steps, random_state=0), (X,)
else:
    cls = DenseRegressor if name == "DenseRegressor" else ResidualRegressor
    shape = {"hidden_layer_sizes": (256, 256)} if cls is DenseRegressor else {}
    epochs = steps * 256 // len(X)
    budget = {"max_iter": epochs, "n_iter_no_change": 10**9} if old else {
        "max_iter": epochs * math.ceil(len(X) / 256), "n_iter_no_change": None}
    model = cls(**shape, batch_size=256, random_state=0, device="cpu", **budget)
    data = (X, y)
wall, cpu = time.perf_counter(), time.process_time()
model.fit(*data)
wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
assert skdiffusion.__file__.startswith(sys.argv[4]), skdiffusion.__file__
print(json.dumps({"steps": model.n_iter_ if not old or name == "DiffusionFeaturizer"
                  else model.n_iter_ * math.ceil(len(X) / 256),
                  "wall": wall, "cpu": cpu}))
"""


def time_fit(source, name, steps, threads):
    env = {**os.environ, "PYTHONPATH": str(source), "OMP_WAIT_POLICY": "PASSIVE"}
    # run from the source tree: `python -c` puts the working directory first
    # on sys.path, ahead of PYTHONPATH and of the installed package
    out = subprocess.run(
        [sys.executable, "-c", CHILD, name, str(steps), str(threads), str(source)],
        cwd=source,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return result["steps"] / result["wall"], result["steps"] / result["cpu"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default=BASELINE)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--estimators",
        default="DiffusionFeaturizer,DenseRegressor,ResidualRegressor",
        help="comma-separated names",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        old = Path(folder) / "baseline"
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(old),
             args.baseline],
            check=True,
        )
        try:
            compare({"old": old, "new": ROOT}, args)
        finally:
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(old)],
                check=True,
            )


def compare(sources, args):
    print(
        f"optimiser steps per second, best of {args.repeats} interleaved fits in "
        f"fresh processes, {args.threads} torch threads; baseline {args.baseline}"
    )
    print(f"{'estimator':<22}{'old wall':>10}{'new wall':>10}{'ratio':>8}"
          f"{'old CPU':>10}{'new CPU':>10}{'ratio':>8}")
    for name in args.estimators.split(","):
        best = {key: [0.0, 0.0] for key in sources}
        for _ in range(args.repeats):
            for key, source in sources.items():
                rates = time_fit(source, name, args.steps, args.threads)
                best[key] = [max(b, r) for b, r in zip(best[key], rates, strict=True)]
        (old_wall, old_cpu), (new_wall, new_cpu) = best["old"], best["new"]
        print(
            f"{name:<22}{old_wall:10.1f}{new_wall:10.1f}{new_wall / old_wall:8.2f}"
            f"{old_cpu:10.1f}{new_cpu:10.1f}{new_cpu / old_cpu:8.2f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
