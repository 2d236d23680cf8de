"""Lorenz 63 surrogate: skdiffusion's torch regressors vs MLPRegressor, same wall time.

The task is the paper's surrogate: from a normalised Lorenz 63 state, predict
its increment over 0.1 MTU (10 RK4 steps). ``DenseRegressor`` and
``sklearn.neural_network.MLPRegressor`` get the same shape (two hidden layers
of 256 ReLU units), Adam with the same learning rate and batch size, no
weight penalty, and the same wall-clock budget: each trains epoch by epoch
(``warm_start`` with ``max_iter=1`` for ours, ``partial_fit`` for sklearn's)
until the budget is spent. ``ResidualRegressor`` (256 units, 3 blocks) gets
the same budget too. The models' epochs alternate, so changes in machine
load hit them alike, and both libraries are warmed up first.

The learning rate is 1e-4 (the paper trains from scratch with 5e-5). There,
epoch for epoch, both models follow the same smooth learning curve, so the
comparison measures how fast each trains. At MLPRegressor's default 1e-3 both
reach Adam's noise floor (a test nRMSE jumping between about 0.004 and 0.013
from epoch to epoch) within about 1000 steps, and which one ends lower at
equal time is chance; try ``--learning-rate 1e-3``.

Printed: epochs done, wall and CPU seconds, test nRMSE (RMSE of the
increment in normalised units) and the ratio sklearn / ours (> 1: ours better).

Both libraries are limited to the same number of threads (``--threads``,
default 1): on a shared, loaded machine spinning OpenMP threads make either
one many times slower, and the comparison should not depend on that.

    python benchmarks/bench_neural.py [--quick] [--budget SECONDS] [--threads N]
"""

import argparse
import time
import warnings
from functools import partial

import torch
from numpy.random import RandomState
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPRegressor
from threadpoolctl import threadpool_limits

from skdiffusion.datasets import make_lorenz63
from skdiffusion.metrics import nrmse
from skdiffusion.neural import DenseRegressor, ResidualRegressor


def train_interleaved(steps, budget):
    """Run each ``steps[name]()`` (one epoch) until it has used ``budget`` seconds.

    Epochs of the models alternate, so a change in machine load hits all of
    them alike. Returns {name: (epochs, wall seconds, CPU seconds)}.
    """
    used = {name: [0, 0.0, 0.0] for name in steps}
    while any(wall < budget for _, wall, _ in used.values()):
        for name, step in steps.items():
            if used[name][1] >= budget:
                continue
            wall, cpu = time.perf_counter(), time.process_time()
            step()
            used[name][0] += 1
            used[name][1] += time.perf_counter() - wall
            used[name][2] += time.process_time() - cpu
    return used


def make_models(learning_rate, batch_size):
    """The three models, each with its one-epoch training step."""
    common = {"learning_rate": learning_rate, "batch_size": batch_size}
    # A RandomState (not an int) advances, so each warm-started epoch reshuffles.
    dense = DenseRegressor(
        (256, 256), **common, max_iter=1, warm_start=True, random_state=RandomState(0)
    )
    residual = ResidualRegressor(
        256,
        n_blocks=3,
        **common,
        max_iter=1,
        warm_start=True,
        random_state=RandomState(0),
    )
    mlp = MLPRegressor(
        hidden_layer_sizes=(256, 256),
        learning_rate_init=learning_rate,
        batch_size=batch_size,
        alpha=0.0,  # no weight penalty, like ours
        random_state=0,
    )
    return {
        "skdiffusion DenseRegressor(256, 256)": (dense, dense.fit),
        "sklearn MLPRegressor(256, 256)": (mlp, mlp.partial_fit),
        "skdiffusion ResidualRegressor(256x3)": (residual, residual.fit),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small data, short budget")
    parser.add_argument("--budget", type=float, help="seconds of training per model")
    parser.add_argument("--threads", type=int, default=1, help="threads per library")
    parser.add_argument("--learning-rate", type=float, default=1e-4)
    parser.add_argument("--batch-size", type=int, default=256)
    args = parser.parse_args()
    n_trajectories, n_steps = (8, 10_000) if args.quick else (16, 20_000)
    budget = args.budget or (15.0 if args.quick else 60.0)

    train = make_lorenz63(n_trajectories, n_steps, random_state=0)
    test = make_lorenz63(4, 2_500, random_state=1)
    print(
        f"Lorenz 63, 0.1 MTU increments: {len(train.X)} training, {len(test.X)} "
        f"test pairs; {budget:g} s of training per model, {args.threads} "
        f"thread(s), Adam lr {args.learning_rate:g}, batch {args.batch_size}"
    )
    with threadpool_limits(args.threads), warnings.catch_warnings():
        torch.set_num_threads(args.threads)
        warnings.simplefilter("ignore", ConvergenceWarning)
        # Warm up both libraries (lazy initialisation is not training time).
        for _, step in make_models(args.learning_rate, args.batch_size).values():
            step(train.X[:512], train.y[:512])
        models = make_models(args.learning_rate, args.batch_size)
        steps = {
            name: partial(step, train.X, train.y) for name, (_, step) in models.items()
        }
        used = train_interleaved(steps, budget)
        scores = {
            name: nrmse(test.y, model.predict(test.X), std=1.0)
            for name, (model, _) in models.items()
        }
    print(f"{'model':<37}{'epochs':>7}{'wall s':>8}{'CPU s':>7}{'test nRMSE':>12}")
    for name, (epochs, wall, cpu) in used.items():
        print(f"{name:<37}{epochs:>7}{wall:>8.1f}{cpu:>7.1f}{scores[name]:>12.5f}")
    baseline = scores["sklearn MLPRegressor(256, 256)"]
    for name in ("DenseRegressor(256, 256)", "ResidualRegressor(256x3)"):
        ratio = baseline / scores[f"skdiffusion {name}"]
        print(f"nRMSE ratio MLPRegressor / {name}: {ratio:.2f} (> 1: ours better)")


if __name__ == "__main__":
    main()
