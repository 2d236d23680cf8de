"""Lorenz 96 surrogates on a ring: which recipe of the conv featurizer counts.

On fixed Lorenz 96 data (40 sites, RK4 step 0.05, increment over 0.1 MTU;
training, validation and test trajectories from different seeds), every
model learns the increment of the normalised state and is rolled out from
test states. Printed per model: one-step nRMSE (normalised by the
climatological std), nRMSE at 0.5 and 1 MTU, the valid prediction time (VPT,
first lead where a rollout's nRMSE exceeds 0.5; median over rollouts) in MTU
and Lyapunov times, and the fit's CPU seconds (all threads; the
featurizer's pretraining included).

Sections (``--sections``, comma separated):

* ``recipe``: persistence; local RFF (9-site patches, wavelength and ridge
  penalty chosen on held-out rows); the conv featurizer untrained and at
  several training lengths, widths, kernel sizes, depths, parameterisations
  and feature times, each with one ridge shared by all sites; a
  ``ConvRegressor`` from scratch and a ``FineTunedRegressor`` at the same
  number of optimiser steps.
* ``frozen``: what makes frozen conv features good, one idea per row: the
  ridge reading each site's neighbours' features (``PeriodicPatches`` of
  per-site blocks), every residual block's output, a random-features head,
  kernel size, depth, parameterisation and pseudo-times, the untrained
  network with the best head, and local RFF at two sizes on the same rows
  (the heads are fitted on every ``--head-stride``-th training state).
* ``efficiency``: a featurizer pretrained on the unlabelled training states
  (``--n-unlabelled``); heads and from-scratch models trained on 10^2 ..
  10^5 labelled pairs; median over ``--n-seeds`` seeds of the pairs drawn.
  The experiment's recipe: its featurizer and trunk, frozen heads reading
  ``--head-radius`` neighbours to each side (0: each site's own features),
  fitted on at most ``--max-head-states`` of the pairs, evenly spaced
  (their neighbourhoods hold 2,400 features a site: 10,000 states take
  3.8 GB).

The sections ``recipe``, ``ring`` and ``peers`` keep the recipe from before
the ``frozen`` study (kernel 5, the last block, pseudo-times 0, 100, 400).
* ``ring``: models trained on 40 sites predict one step on 80 sites; the
  ratio of the one-step nRMSE on 80 sites to that on 40.
* ``peers``: SINDy (pysindy) and next-generation reservoir computing
  (reservoirpy), when installed (``pip install skdiffusion[peers]``).

Usage::

    python benchmarks/spatial_recipe.py                     # all sections
    python benchmarks/spatial_recipe.py --sections recipe --steps 400
    python benchmarks/spatial_recipe.py --sections efficiency --n-seeds 3
"""

import argparse
import dataclasses
import os
import time
import warnings

# The machine is shared: spinning OpenMP threads slow everyone's small ops
# down (must be set before torch is imported).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from sklearn.base import BaseEstimator, RegressorMixin, clone  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils import Bunch  # noqa: E402

from skdiffusion import RFFFeaturizer  # noqa: E402
from skdiffusion.experiments import spatial  # noqa: E402
from skdiffusion.metrics import (  # noqa: E402
    LYAPUNOV_EXPONENTS,
    nrmse,
    valid_prediction_time,
)

LAMBDA = LYAPUNOV_EXPONENTS["lorenz96"]


def _row(name, model, cpu, truth, step, **extra):
    scores = spatial.skill(model, truth, step)
    curve = scores["curve"]
    row = {"model": name, "one_step": scores["one_step"],
           "nrmse@0.5": curve[5], "nrmse@1": curve[10], "vpt": scores["vpt"],
           "vpt_lyap": scores["vpt"] * LAMBDA, "cpu_s": cpu, **extra}
    print(f"  {name:<44} one-step {row['one_step']:.4f}  VPT {row['vpt']:.2f} MTU"
          f"  cpu {cpu:.0f} s", flush=True)
    return row


def _fit(model, X, y):
    return spatial.fit_timed(model, X, y)


def _with_steps(preset, steps):
    return dataclasses.replace(preset, network={**preset.network, "max_iter": steps})


def recipe_variants(steps):
    """name -> featurizer overrides of the preset's recipe."""
    return {
        f"h32 k5 b3 {steps} steps": {},
        f"h32 k5 b3 {3 * steps} steps": {"max_iter": 3 * steps},
        f"h64 {steps} steps": {"n_hidden": 64},
        f"eps-parameterization {steps} steps": {"parameterization": "noise"},
    }


TIMES = {"t=0": (0,), "t=100": (100,), "t=400": (400,), "t=0,100,400": (0, 100, 400)}


def recipe(preset, data, seed, steps, baselines=True):
    train, valid, test = data
    truth, step = spatial.rollouts(test, preset), preset.dt * preset.lead_steps
    X, y = train.X, train.y
    rows = [_row("persistence", spatial.Persistence().fit(X, y), 0.0, truth, step)]
    if baselines:
        rows += _baselines(preset, data, seed, steps, truth, step)
    return pd.concat([pd.DataFrame(rows), _variants(preset, X, y, seed, steps, truth,
                                                       step)], ignore_index=True)


def _baselines(preset, data, seed, steps, truth, step):
    train, valid, test = data
    X, y = train.X, train.y
    rows = []
    model, cpu = _fit(spatial.local_rff(preset, seed, valid), X, y)
    rows.append(_row(f"local RFF + ridge (wavelength {model.chosen_:g})",
                     model, cpu, truth, step))
    for n_steps in (steps, 3 * steps):
        scratch = spatial.conv_scratch(_with_steps(preset, n_steps), seed)
        model, cpu = _fit(scratch, X, y)
        rows.append(_row(f"conv from scratch {n_steps} steps", model, cpu, truth, step))
    untrained, _ = _fit(spatial.conv_featurizer(preset, seed, max_iter=0), X, None)
    for label in ("t=0", "t=0,100,400"):
        f = clone(untrained).set_params(feature_times=TIMES[label]).fit(X)
        model, cpu = _fit(spatial.features_ridge(f, seed), X, y)
        rows.append(_row(f"untrained conv {label} + ridge", model, cpu, truth, step))
    return rows


def _variants(preset, X, y, seed, steps, truth, step):
    rows = []
    for name, overrides in recipe_variants(steps).items():
        featurizer, pre = _fit(
            spatial.conv_featurizer(preset, seed, **{"max_iter": steps, **overrides}),
            X, None,
        )
        time_sets = TIMES if not overrides else {"t=0,100,400": (0, 100, 400)}
        for label, times in time_sets.items():
            featurizer.set_params(feature_times=times)
            model, cpu = _fit(spatial.features_ridge(featurizer, seed), X, y)
            rows.append(_row(f"conv {name} {label} + ridge", model, cpu + pre,
                             truth, step))
        if not overrides:
            p = _with_steps(preset, steps)
            model, cpu = _fit(spatial.fine_tuned(featurizer, p, seed), X, y)
            rows.append(_row(f"fine-tuned conv {steps}+{steps} steps", model,
                             cpu + pre, truth, step))
    return pd.DataFrame(rows)


# name -> (featurizer overrides, head): the head's feature_times,
# feature_blocks, neighbour radius and, optionally, random features on them
# (n_components, wavelength).
LATE = (0, 400, 700, 900)
FIVE = (0, 100, 400, 700, 900)
FROZEN = {
    "h32 k5 (recipe), last block": ({"kernel_size": 5}, {}),
    "h32 k5, every block": ({"kernel_size": 5}, {"blocks": "all"}),
    "h32 k5, last block, neighbours r=2": ({"kernel_size": 5}, {"radius": 2}),
    "h32 k5, every block, neighbours r=2":
        ({"kernel_size": 5}, {"blocks": "all", "radius": 2}),
    "h32 k5, last block, RFF head 1024 wl 100":
        ({"kernel_size": 5}, {"rff": (1024, 100.0)}),
    "h32 k3, every block, r=2": ({}, {"blocks": "all", "radius": 2}),
    "h32 k3 eps, every block, r=2":
        ({"parameterization": "noise"}, {"blocks": "all", "radius": 2}),
    "h32 k3, every block, r=2, t=0,400,700,900":
        ({}, {"blocks": "all", "radius": 2, "times": LATE}),
    "h32 k3 untrained, every block, r=2, t=0,400,700,900":
        ({"max_iter": 0}, {"blocks": "all", "radius": 2, "times": LATE}),
    "h32 k3 eps 4 blocks, every block, r=2, t=0,400,700,900":
        ({"parameterization": "noise", "n_blocks": 4},
         {"blocks": "all", "radius": 2, "times": LATE}),
    "h32 k3 eps, every block, r=2, t=0,400,700,900":
        ({"parameterization": "noise"}, {"blocks": "all", "radius": 2, "times": LATE}),
    "h32 k3, every block, r=2, t=0,100,400,700,900":
        ({}, {"blocks": "all", "radius": 2, "times": FIVE}),
    "h32 k3 eps, every block, r=2, t=0,100,400,700,900":
        ({"parameterization": "noise"}, {"blocks": "all", "radius": 2, "times": FIVE}),
    "h32 k3 eps 4 blocks, every block, r=2, t=0,100,400,700,900":
        ({"parameterization": "noise", "n_blocks": 4},
         {"blocks": "all", "radius": 2, "times": FIVE}),
}


def _frozen_head(featurizer, seed, blocks="last", radius=0, times=(0, 100, 400),
                 rff=None):
    featurizer.set_params(feature_blocks=blocks, feature_times=times)
    model = spatial.features_ridge(featurizer, seed, radius)
    if rff is not None:
        n_components, wavelength = rff
        model[-1].estimator.set_params(transformer=make_pipeline(
            StandardScaler(),
            RFFFeaturizer(n_components, wavelength=wavelength, random_state=seed)))
    return model


def frozen(preset, data, seed, steps, stride, match=""):
    """One-step nRMSE and VPT of frozen-feature heads, one idea per row.

    Only the rows whose name contains ``match`` (all by default; local RFF
    rows only when it is empty).
    """
    train, valid, test = data
    truth, step = spatial.rollouts(test, preset), preset.dt * preset.lead_steps
    X, y = train.X[::stride], train.y[::stride]
    print(f"  heads fitted on {len(X)} states ({len(X) * preset.n_sites} site rows)",
          flush=True)
    rows, featurizers = [], {}
    for name, (overrides, head) in FROZEN.items():
        if match not in name:
            continue
        key = repr(sorted(overrides.items()))
        if key not in featurizers:
            featurizers[key] = _fit(spatial.conv_featurizer(
                preset, seed, **{"max_iter": steps, **overrides}), train.X, None)
        featurizer, pre = featurizers[key]
        model, cpu = _fit(_frozen_head(featurizer, seed, **head), X, y)
        rows.append(_row(name, model, cpu + pre, truth, step))
    for n_components in () if match else (256, 1024):
        rff = dataclasses.replace(preset, n_components=n_components)
        model, cpu = _fit(spatial.local_rff(rff, seed, valid), X, y)
        rows.append(_row(f"local RFF {n_components} (wavelength {model.chosen_:g})",
                         model, cpu, truth, step))
    return pd.DataFrame(rows)


def _subsample(data, n_pairs, rng):
    rows = rng.choice(len(data.X), size=n_pairs, replace=False)
    return data.X[rows], data.y[rows]


def efficiency(preset, data, n_seeds, pairs, steps, max_head_states):
    """VPT and one-step nRMSE against the number of labelled pairs."""
    train, valid, test = data
    truth, step = spatial.rollouts(test, preset), preset.dt * preset.lead_steps
    start = time.process_time()
    pretrained = spatial.conv_featurizer(preset, 0).fit(train.X)
    pre_cpu = time.process_time() - start
    print(f"  featurizer pretrained on {len(train.X)} unlabelled states, "
          f"{pre_cpu:.0f} CPU s", flush=True)
    untrained = spatial.conv_featurizer(preset, 0, max_iter=0).fit(train.X)
    rows = []
    for n_pairs in pairs:
        # about 40 epochs of the pairs, at most the preset's budget
        n_steps = int(min(steps, max(50, 40 * n_pairs / preset.network["batch_size"])))
        p = dataclasses.replace(preset, network={**preset.network, "max_iter": n_steps})
        # the frozen heads on every k-th pair beyond max_head_states
        stride = -(-n_pairs // max_head_states)
        for seed in range(n_seeds):
            X, y = _subsample(train, n_pairs, np.random.default_rng(seed))
            models = {
                "frozen conv + ridge": spatial.features_ridge(
                    pretrained, seed, preset.head_radius, stride),
                "fine-tuned conv": spatial.fine_tuned(pretrained, p, seed),
                "conv from scratch": spatial.conv_scratch(p, seed),
                "local RFF + ridge": spatial.local_rff(preset, seed, valid),
                "untrained conv + ridge": spatial.features_ridge(
                    untrained, seed, preset.head_radius, stride),
            }
            for name, model in models.items():
                model, cpu = _fit(model, X, y)
                rows.append(_row(f"{name} ({n_pairs} pairs, seed {seed})", model, cpu,
                                 truth, step, method=name, n_pairs=n_pairs,
                                 seed=seed, steps=n_steps, head_stride=stride))
    table = pd.DataFrame(rows)
    return table.groupby(["method", "n_pairs"])[["one_step", "vpt"]].median().unstack(0)


def ring(preset, seed, steps):
    """One-step nRMSE on 40 sites and on 80 of models trained on 40."""
    train, valid, test = spatial.lorenz96_data(preset, random_state=1)
    big = dataclasses.replace(preset, n_sites=2 * preset.n_sites)
    _, _, test80 = spatial.lorenz96_data(big, random_state=2)
    featurizer, pre = _fit(spatial.conv_featurizer(preset, seed, max_iter=steps),
                           train.X, None)
    p = dataclasses.replace(preset, network={**preset.network, "max_iter": steps})
    # the experiment's frozen recipe: every block, neighbours' features
    quick = _THREE_BLOCKS
    blocks = spatial.conv_featurizer(quick, seed, max_iter=steps).fit(train.X)
    models = {
        "conv features + ridge": spatial.features_ridge(featurizer, seed),
        "conv features (experiment) + neighbours' ridge": spatial.features_ridge(
            blocks, seed, quick.head_radius, quick.head_stride
        ),
        "local RFF + ridge": spatial.local_rff(preset, seed, valid),
        "conv from scratch": spatial.conv_scratch(p, seed),
        "fine-tuned conv": spatial.fine_tuned(featurizer, p, seed),
    }
    rows = []
    for name, model in models.items():
        model, _ = _fit(model, train.X, train.y)
        e40 = nrmse(test.y, model.predict(test.X), std=1.0)
        e80 = nrmse(test80.y, model.predict(test80.X), std=1.0)
        rows.append({"model": name, "nrmse_40": e40, "nrmse_80": e80,
                     "ratio_80/40": e80 / e40})
    return pd.DataFrame(rows)


class _Field(RegressorMixin, BaseEstimator):
    """The increment over ``step`` of a vector field: ``n_sub`` RK4 steps."""

    def __init__(self, field=None, step=0.1, n_sub=2):
        self.field, self.step, self.n_sub = field, step, n_sub

    def fit(self, X=None, y=None):
        self.fitted_ = True
        return self

    def predict(self, X):
        x, h = np.asarray(X, dtype=np.float64), self.step / self.n_sub
        for _ in range(self.n_sub):
            k1 = self.field(x)
            k2 = self.field(x + h / 2 * k1)
            k3 = self.field(x + h / 2 * k2)
            k4 = self.field(x + h * k3)
            x = x + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        return x - X


def sindy(train, dt, n_states=2_000):
    """SINDy (pysindy): a sparse quadratic vector field fitted to the states.

    On the first ``n_states`` states of the training trajectories (its 861
    candidate terms on 40 sites make each regression costly).
    """
    import pysindy as ps

    model = ps.SINDy(optimizer=ps.STLSQ(threshold=0.05, max_iter=10),
                     feature_library=ps.PolynomialLibrary(degree=2))
    per_trajectory = n_states // len(train.states_fine)
    model.fit([t[:per_trajectory].astype(np.float64) for t in train.states_fine],
              t=dt)
    return _Field(model.predict, 0.1).fit()


class _NGRC:
    """Next-generation reservoir computing (reservoirpy's NVAR + Ridge).

    Features of the state and the state one step (0.1 MTU) before: the
    linear terms and their quadratic monomials; the readout predicts the
    increment. ``predict`` takes a (previous, current) pair per row.
    """

    def __init__(self, ridge):
        from reservoirpy.nodes import NVAR, Ridge

        self.nvar, self.readout = NVAR(delay=1, order=2), Ridge(ridge=ridge)

    def fit(self, previous, current, increment):
        features = self.nvar.run(np.hstack([current, previous]))
        self.readout.fit(features, increment)
        return self

    def step(self, previous, current):
        features = self.nvar.run(np.hstack([current, previous]))
        return current + self.readout.run(features)


def _ngrc_skill(model, truth, previous):
    forecast = np.empty_like(truth)
    forecast[:, 0] = truth[:, 0]
    last, now = previous, truth[:, 0]
    for k in range(1, truth.shape[1]):
        with np.errstate(all="ignore"):
            last, now = now, np.clip(model.step(last, now), -50, 50)
        forecast[:, k] = now
    curve = nrmse(truth, forecast, std=1.0)
    vpt = valid_prediction_time(truth, forecast, dt=0.1, std=1.0)
    return {"one_step": curve[1], "nrmse@0.5": curve[5], "nrmse@1": curve[10],
            "vpt": vpt, "vpt_lyap": vpt * LAMBDA}


def ngrc(train, valid, truth_valid, previous_valid):
    """NG-RC with its ridge penalty chosen on held-out rollouts."""
    states = train.states
    previous, current, nxt = (states[:, :-2].reshape(-1, states.shape[2]),
                              states[:, 1:-1].reshape(-1, states.shape[2]),
                              states[:, 2:].reshape(-1, states.shape[2]))
    best = None
    for ridge in (1e-4, 1e-2, 1.0):
        model = _NGRC(ridge).fit(previous, current, nxt - current)
        score = _ngrc_skill(model, truth_valid, previous_valid)["one_step"]
        if best is None or score < best[0]:
            best = (score, model, ridge)
    return best[1], best[2]


def peers(preset, data):
    """SINDy and NG-RC, when installed, next to persistence."""
    train, valid, test = data
    truth, previous = _with_previous(test, preset)
    few = dataclasses.replace(preset, n_starts=16)
    truth_v, previous_v = _with_previous(valid, few)
    rows = []
    try:
        start = time.process_time()
        model = sindy(train, preset.dt)
        rows.append(_row("SINDy (quadratic library, STLSQ 0.05)", model,
                         time.process_time() - start, truth, 0.1))
    except ImportError:
        print("  pysindy not installed: SINDy skipped")
    try:
        start = time.process_time()
        model, ridge = ngrc(train, valid, truth_v, previous_v)
        cpu = time.process_time() - start
        scores = _ngrc_skill(model, truth, previous)
        rows.append({"model": f"NG-RC (NVAR 2 states, order 2, ridge {ridge:g})",
                     **scores, "cpu_s": cpu})
        print(f"  {rows[-1]['model']:<44} one-step {scores['one_step']:.4f}  "
              f"VPT {scores['vpt']:.2f} MTU  cpu {cpu:.0f} s", flush=True)
    except ImportError:
        print("  reservoirpy not installed: NG-RC skipped")
    return pd.DataFrame(rows)


def _fine_states(train):
    """Normalised training trajectories at every RK4 step (SINDy's input)."""
    return ((train.trajectories - train.shift) / train.scale).astype(np.float32)


def _with_previous(data, preset):
    """Rollout truth from ``data.states`` (from its second state on) and each
    start's previous state."""
    later = Bunch(states=data.states[:, 1:])
    earlier = Bunch(states=data.states[:, :-1])
    return spatial.rollouts(later, preset), spatial.rollouts(earlier, preset)[:, 0]


# The sections other than "frozen" measure the recipe as it was before the
# frozen-feature study: kernel 5, velocity prediction, the last block,
# pseudo-times 0, 100, 400.
# The "frozen" study, the sample efficiency and the ring's frozen row were
# measured on three blocks (the featurizer's default depth), their heads
# fitted on every 4th state; the experiment now uses four blocks.
_THREE_BLOCKS = dataclasses.replace(
    spatial.PRESETS["quick"], head_stride=4,
    featurizer={**spatial.PRESETS["quick"].featurizer, "n_blocks": 3},
)
_BEFORE = dataclasses.replace(_THREE_BLOCKS, featurizer={
    **_THREE_BLOCKS.featurizer, "kernel_size": 5,
    "parameterization": "velocity", "feature_times": (0, 100, 400),
    "feature_blocks": "last", "dtype": "float64",
})


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sections",
                        default="recipe,frozen,efficiency,ring,peers")
    parser.add_argument("--steps", type=int, default=400,
                        help="optimiser steps of the base featurizer and networks")
    parser.add_argument("--n-seeds", type=int, default=3)
    parser.add_argument("--no-baselines", action="store_true",
                        help="recipe: only the trained featurizer's variants")
    parser.add_argument("--pairs", default="100,300,1000,3000,10000")
    parser.add_argument("--n-unlabelled", type=int, default=100_000)
    parser.add_argument("--head-stride", type=int, default=4,
                        help="frozen: fit the heads on every k-th training state")
    parser.add_argument("--head-radius", type=int, default=2,
                        help="efficiency: neighbours read by the frozen heads")
    parser.add_argument("--max-head-states", type=int, default=10_000,
                        help="efficiency: frozen heads on at most this many pairs")
    parser.add_argument("--match", default="",
                        help="frozen: only the rows whose name contains this")
    args = parser.parse_args()
    sections = args.sections.split(",")
    preset = _BEFORE
    pd.set_option("display.width", 200)
    fmt = {"float_format": lambda v: f"{v:.3g}"}
    start = time.perf_counter()
    print(f"python benchmarks/spatial_recipe.py --sections {args.sections} "
          f"--steps {args.steps} --n-seeds {args.n_seeds} --pairs {args.pairs} "
          f"--n-unlabelled {args.n_unlabelled} --head-stride {args.head_stride}"
          f" --head-radius {args.head_radius}"
          f" --max-head-states {args.max_head_states}"
          f"{f' --match {args.match!r}' if args.match else ''}"
          f"{' --no-baselines' if args.no_baselines else ''}; "
          f"{os.cpu_count()} CPU cores, load {os.getloadavg()[0]:.1f}", flush=True)
    warnings.simplefilter("ignore", RuntimeWarning)
    if "recipe" in sections:
        data = spatial.lorenz96_data(preset, random_state=0)
        print(f"\n== recipe: {len(data[0].X)} training states, 40 sites", flush=True)
        table = recipe(preset, data, 0, args.steps, baselines=not args.no_baselines)
        print(table.to_string(**fmt), flush=True)
    if "frozen" in sections:
        data = spatial.lorenz96_data(preset, random_state=0)
        print("\n== frozen features: one seed", flush=True)
        table = frozen(_THREE_BLOCKS, data, 0, args.steps,
                       args.head_stride, args.match)
        print(table.to_string(**fmt), flush=True)
    if "efficiency" in sections:
        n_traj = max(1, args.n_unlabelled // preset.n_train_steps)
        # the frozen-feature recipe of the experiment (neighbours' features)
        big = dataclasses.replace(_THREE_BLOCKS, n_train_trajectories=n_traj,
                                  head_radius=args.head_radius)
        data = spatial.lorenz96_data(big, random_state=0)
        print(f"\n== sample efficiency: median of {args.n_seeds} seeds", flush=True)
        pairs = [int(n) for n in args.pairs.split(",")]
        table = efficiency(big, data, args.n_seeds, pairs, args.steps,
                           args.max_head_states)
        print(table.to_string(**fmt), flush=True)
    if "ring" in sections:
        print("\n== 40 -> 80 sites: one-step nRMSE", flush=True)
        print(ring(preset, 0, args.steps).to_string(**fmt), flush=True)
    if "peers" in sections:
        data = spatial.lorenz96_data(preset, random_state=0)
        data[0].states_fine = _fine_states(data[0])
        print("\n== peers (same data as recipe)", flush=True)
        print(peers(preset, data).to_string(**fmt), flush=True)
    print(f"\nWall time {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
