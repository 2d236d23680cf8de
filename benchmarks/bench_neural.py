"""Lorenz 63 surrogate: skdiffusion's torch regressors vs MLPRegressor, same wall time.

The task is the paper's surrogate: from a normalised Lorenz 63 state, predict
its increment over 0.1 MTU (10 RK4 steps). Each of our networks races an
``sklearn.neural_network.MLPRegressor`` with the same layers and sizes:
``DenseRegressor((256, 256))`` against ``MLPRegressor((256, 256))``, and
``ResidualRegressor(256, n_blocks=3)`` (an input layer and 3 blocks of two
256 x 256 layers) against ``MLPRegressor((256,) * 7)``. All use ReLU and
Adam with the same batch size, no weight penalty, and get the same
wall-clock budget: each trains slice by slice (one pass over 20 000
samples: ``warm_start`` with ``max_iter=1`` for ours, ``partial_fit`` for
sklearn's) until it has used the budget. The models take turns, so changes
in machine load hit them alike, and both libraries are warmed up first.

Learning rates (``LEARNING_RATES``): the dense pair shares 1e-4 (the paper
trains from scratch with 5e-5); there both follow the same smooth learning
curve epoch for epoch, so their race measures how fast each trains. At 1e-3
both reach Adam's noise floor within about 1000 steps and which one ends
lower is chance (``--learning-rate 1e-3`` shows it). The residual network
and the 7-layer MLP each get the better of 1e-4 and 1e-3 over their first 3
epochs: 1e-3 and 1e-4.

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

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPRegressor
from threadpoolctl import threadpool_limits

from skdiffusion.datasets import make_lorenz63
from skdiffusion.metrics import nrmse
from skdiffusion.neural import DenseRegressor, ResidualRegressor

# Measured on the quick data. The dense pair follows the same smooth curve
# epoch for epoch at 1e-4, so their race measures speed (at 1e-3 both hit
# Adam's noise floor, a test nRMSE jumping between about 0.004 and 0.013,
# within ~1000 steps and the race is chance). Of 1e-4 and 1e-3,
# ResidualRegressor learns ~10x faster per epoch at 1e-3, while the 7-layer
# MLP is unstable at 1e-3 (its error grows after the first epoch).
LEARNING_RATES = {"dense": 1e-4, "residual": 1e-3, "deep_mlp": 1e-4}
# Training advances in slices of this many samples, so that each model's
# time can be checked against the budget several times per epoch.
SLICE = 20_000


def train_interleaved(steps, n_slices, budget):
    """Call each ``steps[name](i)`` (one pass over slice i) until ``budget`` s.

    The models take turns slice by slice, so a change in machine load hits
    all of them alike. Returns {name: (epochs, wall seconds, CPU seconds)}.
    """
    used = {name: [0, 0.0, 0.0] for name in steps}
    while any(wall < budget for _, wall, _ in used.values()):
        for name, step in steps.items():
            if used[name][1] >= budget:
                continue
            wall, cpu = time.perf_counter(), time.process_time()
            step(used[name][0] % n_slices)
            used[name][0] += 1
            used[name][1] += time.perf_counter() - wall
            used[name][2] += time.process_time() - cpu
    return {name: (n / n_slices, wall, cpu) for name, (n, wall, cpu) in used.items()}


def make_models(learning_rates, batch_size):
    """Pairs of (ours, sklearn's MLPRegressor of the same layers and sizes)."""
    # max_iter=1 + warm_start: each fit is one pass over the slice it is given.
    ours = {"batch_size": batch_size, "max_iter": 1, "warm_start": True}
    # No weight penalty, like ours.
    sklearn = {"batch_size": batch_size, "alpha": 0.0, "random_state": 0}
    # A RandomState (not an int) advances, so each warm-started fit reshuffles.
    seed = np.random.RandomState
    return {
        "DenseRegressor((256, 256))": DenseRegressor(
            (256, 256),
            learning_rate=learning_rates["dense"],
            **ours,
            random_state=seed(0),
        ),
        "MLPRegressor((256, 256))": MLPRegressor(
            hidden_layer_sizes=(256, 256),
            learning_rate_init=learning_rates["dense"],
            **sklearn,
        ),
        # An input layer and 3 blocks of 2 layers: the layers of a 7-layer MLP.
        "ResidualRegressor(256, n_blocks=3)": ResidualRegressor(
            256,
            n_blocks=3,
            learning_rate=learning_rates["residual"],
            **ours,
            random_state=seed(0),
        ),
        "MLPRegressor((256,) * 7)": MLPRegressor(
            hidden_layer_sizes=(256,) * 7,
            learning_rate_init=learning_rates["deep_mlp"],
            **sklearn,
        ),
    }


def one_pass(model):
    """The method that trains ``model`` for one pass over the data it gets."""
    if isinstance(model, MLPRegressor):
        return model.partial_fit
    return model.fit  # ours, with max_iter=1 and warm_start=True


def slice_step(model, X, y, slices):
    """``step(i)``: one pass of ``model`` over the rows ``slices[i]``."""
    fit = one_pass(model)
    return lambda i: fit(X[slices[i]], y[slices[i]])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small data, short budget")
    parser.add_argument("--budget", type=float, help="seconds of training per model")
    parser.add_argument("--threads", type=int, default=1, help="threads per library")
    parser.add_argument(
        "--learning-rate", type=float, help="one learning rate for all models"
    )
    parser.add_argument("--batch-size", type=int, default=256)
    args = parser.parse_args()
    n_trajectories, n_steps = (8, 10_000) if args.quick else (16, 20_000)
    budget = args.budget or (15.0 if args.quick else 60.0)

    learning_rates = dict(LEARNING_RATES)
    if args.learning_rate:
        learning_rates = dict.fromkeys(LEARNING_RATES, args.learning_rate)

    train = make_lorenz63(n_trajectories, n_steps, random_state=0)
    test = make_lorenz63(4, 2_500, random_state=1)
    order = np.random.default_rng(0).permutation(len(train.X))
    slices = [order[i : i + SLICE] for i in range(0, len(order), SLICE)]
    print(
        f"Lorenz 63, 0.1 MTU increments: {len(train.X)} training, {len(test.X)} "
        f"test pairs; {budget:g} s of training per model, {args.threads} "
        f"thread(s), batch {args.batch_size}, Adam learning rates {learning_rates}"
    )
    with threadpool_limits(args.threads), warnings.catch_warnings():
        torch.set_num_threads(args.threads)
        warnings.simplefilter("ignore", ConvergenceWarning)
        # Warm up both libraries (lazy initialisation is not training time).
        for model in make_models(learning_rates, args.batch_size).values():
            one_pass(model)(train.X[:512], train.y[:512])
        models = make_models(learning_rates, args.batch_size)
        steps = {
            name: slice_step(model, train.X, train.y, slices)
            for name, model in models.items()
        }
        used = train_interleaved(steps, len(slices), budget)
        scores = {
            name: nrmse(test.y, model.predict(test.X), std=1.0)
            for name, model in models.items()
        }
    print(f"{'model':<36}{'epochs':>7}{'wall s':>8}{'CPU s':>7}{'test nRMSE':>12}")
    for name, (epochs, wall, cpu) in used.items():
        print(f"{name:<36}{epochs:>7.2f}{wall:>8.1f}{cpu:>7.1f}{scores[name]:>12.5f}")
    names = list(scores)
    for ours, sklearn in (names[0:2], names[2:4]):
        ratio = scores[sklearn] / scores[ours]
        print(f"nRMSE ratio {sklearn} / {ours}: {ratio:.2f} (> 1: ours better)")


if __name__ == "__main__":
    main()
