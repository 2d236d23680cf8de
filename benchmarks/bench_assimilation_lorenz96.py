"""Lorenz 96 data assimilation: the long anchor runs and the cost per cycle.

1. The published anchors (DAPPER's Lorenz 96 benchmark after Sakov & Oke,
   2008: 40 sites, F = 8, RK4 with dt 0.05, every site observed every step
   with R = I) with the settings of the "long" preset of
   ``skdiffusion.experiments.assimilation_lorenz96``: 16 experiments of
   4000 scored cycles (200 MTU) after 400 (20 MTU). Prints each method's
   time-mean analysis RMSE, its standard error over experiments, and its
   ratio to the published number.
2. The cost of one assimilation cycle (the analysis alone, then the model
   forecast of the propagated states) for every method on rings of 40 to
   400 sites (every site observed), with its ratio to 40 sites. The
   LETKF's local analyses are one batched call, so its cost should grow
   about linearly with the number of sites; the static and localised-EnOI
   gains solve an ``n_obs x n_obs`` system, cubic in the number of sites.
   The diffusion sampler's network is fitted for one step only: its cost
   does not depend on its weights. numpy's BLAS runs on one thread (set
   ``OPENBLAS_NUM_THREADS`` to change it).

Usage::

    python benchmarks/bench_assimilation_lorenz96.py
    python benchmarks/bench_assimilation_lorenz96.py --skip-anchors --sizes 40,400
"""

import argparse
import os
import time

# The machine is shared: spinning OpenMP threads slow everyone's small ops
# down (must be set before torch is imported). Multithreaded BLAS on these
# small matrices made the timings erratic under load (the LETKF took 27
# times as long on 400 sites as on 40, and 10 times with one thread), so
# numpy's linear algebra runs on one thread unless the caller says otherwise.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
for _variable in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from skdiffusion import DiffusionFeaturizer  # noqa: E402
from skdiffusion.assimilation import (  # noqa: E402
    ETKF,
    LETKF,
    DiffusionEnsemble,
    EnOI,
    OptimalInterpolation,
    StaticCovarianceEnsemble,
    ThreeDVar,
)
from skdiffusion.datasets import make_lorenz96  # noqa: E402
from skdiffusion.experiments import assimilation_lorenz96 as experiment  # noqa: E402


def methods(n_sites, states, featurizer):
    mean, cov = states.mean(axis=0), np.cov(states.T)
    sampler = DiffusionEnsemble(featurizer, tau=80, n_members=50, n_steps=25,
                                shift=np.full(n_sites, 2.34),
                                scale=np.full(n_sites, 3.64))
    static = StaticCovarianceEnsemble(cov, inflation=0.02, n_members=50)
    return {
        "optimal interpolation": OptimalInterpolation(mean, cov),
        "3D-Var": ThreeDVar(cov, inflation=0.02, localization_radius=4),
        "LETKF (10)": LETKF(10, inflation=1.05, localization_radius=4),
        "ETKF (24)": ETKF(24, inflation=1.026),
        "static EnOI (50), localised": EnOI(static, localization_radius=4),
        "diffusion EnOI (50), localised": EnOI(sampler, localization_radius=4),
    }


def cycle_costs(sizes, n_experiments, n_cycles, seed=0):
    """Milliseconds per cycle of each method's analysis and forecast."""
    rows = []
    for n_sites in sizes:
        data = make_lorenz96(1, 4 * n_sites + 1000, n_dim=n_sites, dt=0.05,
                             lead_steps=1, random_state=seed)
        states = data.trajectories[0]
        featurizer = DiffusionFeaturizer(
            **{**experiment.PRESETS["quick"].featurizer, "max_iter": 1},
            random_state=seed,
        ).fit(data.X)
        model = experiment.lorenz96_model(0.05)
        rng = np.random.default_rng(seed)
        truth = states[rng.integers(len(states), size=n_experiments)]
        for name, method in methods(n_sites, states, featurizer).items():
            m = method.n_forecast_members
            state = truth[:, None] + 0.5 * rng.standard_normal((n_experiments, m,
                                                                n_sites))
            observations = truth + rng.standard_normal(truth.shape)
            analysis = forecast = 0.0
            for _ in range(n_cycles):
                start = time.perf_counter()
                background = model(state, 1)
                middle = time.perf_counter()
                state, _, _ = method.assimilate(
                    background, observations, obs_operator=None, obs_error_std=1.0,
                    random_state=seed,
                )
                analysis += time.perf_counter() - middle
                forecast += middle - start
            rows.append({"method": name, "n_sites": n_sites,
                         "analysis_ms": 1e3 * analysis / n_cycles,
                         "forecast_ms": 1e3 * forecast / n_cycles})
        print(f"{n_sites} sites timed", flush=True)
    table = pd.DataFrame(rows)
    first = table[table.n_sites == sizes[0]].set_index("method").analysis_ms
    table["analysis_ratio"] = table.analysis_ms / table.method.map(first)
    return table


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="40,100,200,400")
    parser.add_argument("--n-experiments", type=int, default=4)
    parser.add_argument("--n-cycles", type=int, default=10)
    parser.add_argument("--skip-anchors", action="store_true")
    args = parser.parse_args()
    if not args.skip_anchors:
        preset = experiment.PRESETS["long"]
        start = time.perf_counter()
        anchors = experiment.lorenz96_anchors("long", verbose=True)
        print(
            f"\nPublished anchors, long runs: {preset.n_anchor_experiments} "
            f"experiments x {preset.n_anchor_cycles} cycles "
            f"({preset.n_anchor_cycles * preset.dt:g} MTU) after "
            f"{preset.n_anchor_burn_in}; time-mean analysis RMSE (model units); "
            f"{time.perf_counter() - start:.0f} s\n"
            + anchors.to_string(index=False, float_format=lambda v: f"{v:.3f}")
        )
    sizes = [int(s) for s in args.sizes.split(",")]
    table = cycle_costs(sizes, args.n_experiments, args.n_cycles)
    print(
        f"\nCost of one cycle of {args.n_experiments} experiments, every site "
        f"observed (mean of {args.n_cycles} cycles; ratio: analysis cost over "
        f"that on {sizes[0]} sites)\n"
        + table.to_string(index=False, float_format=lambda v: f"{v:.2f}")
    )


if __name__ == "__main__":
    main()
