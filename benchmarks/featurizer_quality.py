"""Quality of diffusion features against training time: which recipe counts.

On fixed Lorenz 63 data (training and test trajectories from different
seeds), each *recipe* (a set of ``DiffusionFeaturizer`` parameters and a
ridge head) is fitted with a time budget, then used as a transfer + ridge
surrogate of the 0.1 MTU increment and rolled out. Reported per recipe and
budget:

* nRMSE (RMSE in normalised units) at 0.1, 1 and 5 MTU, from test states,
  with :meth:`skdiffusion.SurrogateForecaster.forecast`;
* the Hellinger distance between the states of the 10 MTU rollouts and the
  test climate (:func:`skdiffusion.metrics.hellinger_distance`), next to the
  same distance for the true trajectories from the same starts (the floor
  from sampling alone);
* the featurizer's fit time, wall and CPU (process) seconds;
* its denoising loss (``-DiffusionFeaturizer.score``) on test states: how
  good a generative model it is, which the features do not show.

In the same run, two references: random Fourier features (1536) + ridge
(also with the ``holdout`` head when a recipe uses it), and a
``DenseRegressor((256, 256))`` trained from scratch on the increment for the
largest budget, with the recipe ``benchmarks/bench_neural.py`` found best
for it (its "steps" are epochs over the training states). The table ends
with each recipe's ratio to RFF at 0.1 MTU and its Hellinger ratio to RFF's
(RFF with the same head where it was run, else with ``ridge``); a PNG shows
nRMSE at 0.1 MTU against training time per recipe.

Budgets are CPU (process) seconds by default (``--clock cpu``): other
programs on a shared machine slow the wall clock but not the CPU time a fit
needs, and with two threads a CPU-second budget ``B`` takes at most ``B``
wall seconds unloaded. A budget becomes a number of optimiser steps from a
short calibration fit of the same network and batch size, so the learning
rate schedule runs to its end; a budget of 0 keeps the recipe's own
``max_iter`` (for ``default``: the featurizer's default, as a user gets it).

Usage::

    python benchmarks/featurizer_quality.py --quick
    python benchmarks/featurizer_quality.py --recipes default,paper --budgets 60,300
    python benchmarks/featurizer_quality.py --recipes default --heads ridge,ridgecv
    python benchmarks/featurizer_quality.py --recipes default --budgets 0  # as is
    python benchmarks/featurizer_quality.py --list
"""

import argparse
import os
import time
import warnings

# The machine is shared: spinning OpenMP threads slow everyone's small ops
# down (must be set before torch is imported).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
from sklearn.base import clone  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.frozen import FrozenEstimator  # noqa: E402
from sklearn.linear_model import RidgeCV  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import FunctionTransformer, StandardScaler  # noqa: E402

from skdiffusion import (  # noqa: E402
    DenseRegressor,
    DiffusionFeaturizer,
    RFFFeaturizer,
    StreamingRidge,
    StreamingRidgeCV,
    SurrogateForecaster,
)
from skdiffusion.datasets import make_lorenz63  # noqa: E402
from skdiffusion.metrics import hellinger_distance, nrmse  # noqa: E402

# Featurizer parameters of the paper (Finn et al., 2024) at the batch size the
# first measurements on this hardware used; every other recipe says what it changes.
PAPER = {
    "activation": "relu",
    "batch_size": 4096,
    "learning_rate": 3e-4,
    "lr_schedule": "constant",
    "warmup_iter": 0,
    "t_sampling": "uniform",
    "mixed_precision": False,
}
# The first study varied the training of the ReLU network (the defaults of
# its time, before the activation was a parameter).
RELU = {"activation": "relu", "mixed_precision": True}

# name -> (featurizer parameters, head). Head "ridge": StreamingRidge with
# alpha 1e-4 on standardised features (the paper's); "ridgecv": RidgeCV over
# ALPHAS on standardised features (generalised cross-validation); "holdout":
# StreamingRidgeCV over ALPHAS on standardised features (alpha chosen on 10 %
# of the head rows held out). Featurizer parameters not given keep the
# DiffusionFeaturizer defaults of the installed version.
RECIPES = {
    "paper": (PAPER, "ridge"),
    "default": ({}, "ridge"),
    "default+ridgecv": ({}, "ridgecv"),
    "default+holdout": ({}, "holdout"),
    "iter800": ({"max_iter": 800}, "holdout"),  # the default before 400
    "iter400": ({"max_iter": 400}, "holdout"),
    "iter100": ({"max_iter": 100}, "holdout"),
    "iter200": ({"max_iter": 200}, "holdout"),
    "untrained": ({"max_iter": 0}, "holdout"),
    "relu": (RELU, "ridge"),
    "relu+ridgecv": (RELU, "ridgecv"),
    "gelu": ({"activation": "gelu"}, "ridge"),
    "gelu+ridgecv": ({"activation": "gelu"}, "ridgecv"),
    "silu": ({"activation": "silu"}, "ridge"),
    "silu+ridgecv": ({"activation": "silu"}, "ridgecv"),
    "lr3e-4": ({"learning_rate": 3e-4}, "ridge"),
    "lowt": ({"t_sampling": "low"}, "ridge"),
    "relu+fp32": ({**RELU, "mixed_precision": False}, "ridge"),
    "relu+lr3e-3": ({**RELU, "learning_rate": 3e-3}, "ridge"),
    "relu+lr3e-4": ({**RELU, "learning_rate": 3e-4}, "ridge"),
    "relu+bs512": ({**RELU, "batch_size": 512}, "ridge"),
    "relu+bs8192": ({**RELU, "batch_size": 8192}, "ridge"),
    "relu+ema": ({**RELU, "ema_decay": 0.999}, "ridge"),
    "relu+width128": ({**RELU, "n_hidden": 128}, "ridge"),
    "relu+lowt": ({**RELU, "t_sampling": "low"}, "ridge"),
    "relu+t0+400": ({**RELU, "feature_times": (0, 400)}, "ridge"),
    "relu+t0-50": ({**RELU, "feature_times": (0, 10, 25, 50)}, "ridge"),
}

ALPHAS = np.logspace(-12, 0, 13)
# The paper's ridge penalty on standardised features.
RIDGE_ALPHA = 1e-4
LEAD = 10  # RK4 steps of 0.01 MTU per surrogate step (0.1 MTU)
REPORT_LEADS = {"0.1": 1, "1": 10, "5": 50}
N_LEADS = 100  # rollout length: 10 MTU
LOSS_ROWS = 65536  # test states on which the denoising loss is reported

SIZES = {
    # 1.02e6 training states (256 trajectories x 4000 steps), 2^17 of them for heads
    "full": {"train": (256, 4000), "test": (16, 4000), "head_rows": 2**17,
             "n_starts": 256, "budgets": (60, 150, 300)},
    "quick": {"train": (32, 2000), "test": (4, 2000), "head_rows": 2**13,
              "n_starts": 64, "budgets": (8,)},
}


class Clock:
    """Wall and CPU seconds since creation."""

    def __init__(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def elapsed(self):
        return time.perf_counter() - self.wall, time.process_time() - self.cpu


def load_data(size):
    train = make_lorenz63(*size["train"], lead_steps=LEAD, random_state=0,
                          dtype=np.float32)
    test = make_lorenz63(*size["test"], lead_steps=LEAD, random_state=1)
    rng = np.random.default_rng(2)
    rows = rng.choice(len(train.X), size=min(size["head_rows"], len(train.X)),
                      replace=False)
    return train, test, rows


def test_rollouts(test, n_starts):
    """True states at leads 0..N_LEADS (steps of 0.1 MTU) from test states."""
    states = (test.trajectories - test.shift) / test.scale
    n_traj, n_steps, _ = states.shape
    rng = np.random.default_rng(3)
    traj = rng.integers(n_traj, size=n_starts)
    start = rng.integers(n_steps - N_LEADS * LEAD, size=n_starts)
    offsets = np.arange(N_LEADS + 1) * LEAD
    return states[traj[:, None], start[:, None] + offsets], states.reshape(-1, 3)


def evaluate(regressor, train, rows, truth, climate):
    """Fit the surrogate on the head rows; nRMSE by lead and climate distances."""
    X = train.X[rows].astype(np.float64)
    forecaster = SurrogateForecaster(regressor).fit(X, X + train.y[rows])
    with np.errstate(all="ignore"):
        forecast = forecaster.forecast(truth[:, 0], N_LEADS)
    curve = nrmse(truth, forecast, std=1.0)
    result = {f"nrmse@{mtu}": curve[lead] for mtu, lead in REPORT_LEADS.items()}
    result["hellinger"] = hellinger_distance(forecast[:, 1:].reshape(-1, 3), climate)
    head = forecaster.regressor_
    head = head[-1] if hasattr(head, "steps") else head
    result["alpha"] = getattr(head, "alpha_", getattr(head, "alpha", np.nan))
    return result


def ridge_head(transformer, head, seed=0):
    if head == "ridge":
        return StreamingRidge(RIDGE_ALPHA, transformer=transformer, standardize=True)
    if head == "holdout":
        return StreamingRidgeCV(ALPHAS, transformer=transformer, standardize=True,
                                random_state=seed)
    to_float64 = FunctionTransformer(lambda F: F.astype(np.float64))
    return make_pipeline(transformer, to_float64, StandardScaler(), RidgeCV(ALPHAS))


def seconds_per_step(params, X, clock, n_steps=10):
    """CPU or wall seconds per optimiser step, from a short fit.

    A one-step fit first pays torch's one-off costs; the timed fit's own
    overhead is counted as training, so budgets are met from below.
    """
    for max_iter in (1, n_steps):
        featurizer = DiffusionFeaturizer(**{**params, "max_iter": max_iter,
                                            "warmup_iter": 0, "random_state": 0})
        start = Clock()
        featurizer.fit(X)
    return start.elapsed()[clock == "cpu"] / n_steps


def run_recipe(name, budget, data, args, step_cache):
    """Fit the recipe's featurizer once; a record per head evaluated on it."""
    params, head = RECIPES[name]
    heads = args.heads.split(",") if args.heads else [head]
    train, test, rows, truth, climate = data
    key = tuple(sorted((k, str(v)) for k, v in params.items()
                       if k in ("batch_size", "n_hidden", "n_blocks",
                                "mixed_precision", "ema_decay", "activation")))
    if budget:
        if key not in step_cache:
            step_cache[key] = seconds_per_step(params, train.X[:65536], args.clock)
        params = {**params, "max_iter": max(1, int(budget / step_cache[key]))}
    # budget 0: the recipe's own max_iter (the defaults' if it sets none)
    featurizer = DiffusionFeaturizer(**{**params, "random_state": args.seed,
                                        "verbose": args.verbose})
    max_iter = featurizer.max_iter
    featurizer.set_params(eval_every=max(1, max_iter // 10))
    clock = Clock()
    featurizer.fit(train.X)
    wall, cpu = clock.elapsed()
    # the denoiser's own quality, for the samples it draws
    loss = -featurizer.score(test.X[:LOSS_ROWS])
    records = []
    for head in heads:
        result = evaluate(ridge_head(FrozenEstimator(featurizer), head, args.seed),
                          train, rows, truth, climate)
        label = name if len(heads) == 1 else f"{name}[{head}]"
        records.append({"recipe": label, "head": head, "budget": budget,
                        "max_iter": max_iter, "loss": loss,
                        "fit_wall": wall, "fit_cpu": cpu, **result})
    return records


def dense_reference(budget, data, args):
    """DenseRegressor((256, 256)) trained on the increment for `budget` seconds.

    The recipe benchmarks/bench_neural.py found best for it (Adam, peak 3e-3
    decayed to zero along a cosine, batches of 256), with as many optimiser
    steps as a short calibration says fit in the budget, so the decay ends
    there.
    """
    train, _, rows, truth, climate = data
    X = train.X.astype(np.float32)
    target = train.y.astype(np.float32)
    dense = DenseRegressor((256, 256), learning_rate=3e-3, lr_schedule="cosine",
                           batch_size=256, n_iter_no_change=None,
                           random_state=args.seed)
    probe = clone(dense).set_params(max_iter=1)
    n_probe = 128
    with warnings.catch_warnings():  # a few steps are the point of the probe
        warnings.simplefilter("ignore", ConvergenceWarning)
        probe.fit(X[:2048], target[:2048])  # torch's one-off costs: not training
        clock = Clock()
        probe.set_params(max_iter=n_probe).fit(X, target)
    per_step = clock.elapsed()[args.clock == "cpu"] / n_probe
    dense.set_params(max_iter=max(1, round(budget / per_step)))
    clock = Clock()
    dense.fit(X, target)
    wall, cpu = clock.elapsed()
    result = evaluate(FrozenEstimator(dense), train, rows, truth, climate)
    return {"recipe": "dense(256,256)", "budget": budget, "max_iter": dense.n_iter_,
            "fit_wall": wall, "fit_cpu": cpu, **result}


def rff_reference(data, args, head="ridge"):
    train, _, rows, truth, climate = data
    clock = Clock()
    rff = RFFFeaturizer(1536, random_state=args.seed)
    result = evaluate(ridge_head(rff, head, args.seed), train, rows, truth, climate)
    wall, cpu = clock.elapsed()
    return {"recipe": f"RFF(1536)+{head}", "head": head, "budget": 0, "max_iter": 0,
            "fit_wall": wall, "fit_cpu": cpu, **result}


def truth_reference(data):
    _, _, _, truth, climate = data
    return {"recipe": "truth (floor)", "budget": 0, "max_iter": 0, "fit_wall": 0.0,
            "fit_cpu": 0.0, "alpha": np.nan, "nrmse@0.1": 0.0, "nrmse@1": 0.0,
            "nrmse@5": 0.0,
            "hellinger": hellinger_distance(truth[:, 1:].reshape(-1, 3), climate)}


def print_table(records, rffs):
    """One line per record; ratios to the RFF reference with the same head."""
    header = (f"{'recipe':22s} {'budget':>6s} {'steps':>6s} {'wall s':>7s} "
              f"{'cpu s':>7s} {'@0.1MTU':>9s} {'@1MTU':>9s} {'@5MTU':>9s} "
              f"{'Hellinger':>9s} {'/RFF@0.1':>9s} {'H/RFF':>6s} {'alpha':>7s} "
              f"{'loss':>7s}")
    print(header)
    print("-" * len(header))
    for r in records:
        rff = rffs.get(r.get("head"), rffs["ridge"])
        print(f"{r['recipe']:22s} {r['budget']:6.0f} {r['max_iter']:6d} "
              f"{r['fit_wall']:7.1f} {r['fit_cpu']:7.1f} {r['nrmse@0.1']:9.2e} "
              f"{r['nrmse@1']:9.2e} {r['nrmse@5']:9.2e} {r['hellinger']:9.3f} "
              f"{r['nrmse@0.1'] / rff['nrmse@0.1']:9.3g} "
              f"{r['hellinger'] / rff['hellinger']:6.2f} {r['alpha']:7.0e} "
              f"{r.get('loss', np.nan):7.4f}", flush=True)


def plot(records, rff, path, clock):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    key = "fit_cpu" if clock == "cpu" else "fit_wall"
    for name in dict.fromkeys(r["recipe"] for r in records):
        rows = [r for r in records if r["recipe"] == name]
        ax.plot([r[key] for r in rows], [r["nrmse@0.1"] for r in rows], "o-",
                label=name)
    ax.axhline(rff["nrmse@0.1"], color="k", ls="--", label="RFF(1536)+ridge")
    ax.set(xlabel=f"training time ({clock} s)", ylabel="nRMSE at 0.1 MTU",
           yscale="log", title="Lorenz 63, transfer + ridge")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    print(f"wrote {path}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small data, 1 budget")
    parser.add_argument("--recipes", default="paper,default",
                        help="comma-separated names (see --list)")
    parser.add_argument("--budgets", help="comma-separated training seconds; 0 "
                        "trains the recipe's own max_iter steps")
    parser.add_argument("--heads", help="comma-separated heads (ridge, ridgecv, "
                        "holdout) "
                        "to fit on each featurizer instead of the recipe's own")
    parser.add_argument("--clock", choices=("cpu", "wall"), default="cpu")
    parser.add_argument("--no-dense", action="store_true",
                        help="skip the from-scratch reference")
    parser.add_argument("--plot", default="featurizer_quality.png")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--verbose", type=int, default=0)
    parser.add_argument("--list", action="store_true", help="list the recipes")
    args = parser.parse_args()
    if args.list:
        for name, (params, head) in RECIPES.items():
            print(f"{name:22s} head={head:8s} {params}")
        return
    names = args.recipes.split(",")
    unknown = [name for name in names if name not in RECIPES]
    if unknown:
        parser.error(f"unknown recipes {unknown}; see --list")
    size = SIZES["quick" if args.quick else "full"]
    budgets = ([float(b) for b in args.budgets.split(",")] if args.budgets
               else size["budgets"])

    train, test, rows = load_data(size)
    truth, climate = test_rollouts(test, size["n_starts"])
    data = (train, test, rows, truth, climate)
    print(f"train {train.X.shape[0]} states, heads fitted on {len(rows)}, "
          f"{len(truth)} test rollouts of {N_LEADS} x 0.1 MTU; budgets in "
          f"{args.clock} seconds: {budgets}", flush=True)
    rffs = {"ridge": rff_reference(data, args)}
    heads = (args.heads or "").split(",") + [RECIPES[name][1] for name in names]
    if "holdout" in heads:
        rffs["holdout"] = rff_reference(data, args, "holdout")
    records, step_cache = [truth_reference(data), *rffs.values()], {}
    if not args.no_dense:
        records.append(dense_reference(max(budgets) or 300.0, data, args))
    print_table(records, rffs)
    for name in names:
        for budget in budgets:
            new = run_recipe(name, budget, data, args, step_cache)
            print_table(new, rffs)
            records += new
    print()
    print_table(records, rffs)
    plot([r for r in records if r["recipe"].split("[")[0] in names], rffs["ridge"],
         args.plot, args.clock)


if __name__ == "__main__":
    main()
