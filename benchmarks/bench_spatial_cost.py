"""Cost of the conv featurizer on rings of 40 to 1000 sites, and a 1000-site run.

1. Per ring size, the convolutional ``DiffusionFeaturizer``'s training time
   per optimiser step, with batches of the same number of state-sites
   (``--site-batch`` / ``n_sites`` states), and its transform time per
   state-site; each printed with its ratio to 40 sites. The network's
   weights do not depend on the ring size and its convolutions cost time
   linear in it, so both should stay constant.
2. An end-to-end run on a 1000-site ring: Lorenz 96 data (``make_lorenz96``),
   the featurizer's fit, one ridge shared by all sites on each site's and
   its ``--head-radius`` neighbours' features (``PeriodicPatches``,
   ``SiteWiseRegressor``; fitted on every ``--head-stride``-th training
   state, which bounds the memory of those neighbourhoods), and rollouts of
   the surrogate (``SurrogateForecaster(ring=True)``), with the wall time of
   each part and the peak resident memory of the process
   (``resource.getrusage``).

The featurizer is ``DiffusionFeaturizer(architecture="conv")`` with its
defaults (the Lorenz 96 recipe) and the learning rate of the spatial
experiment.

Usage::

    python benchmarks/bench_spatial_cost.py
    python benchmarks/bench_spatial_cost.py --sizes 40,200,1000 --steps 20
"""

import argparse
import os
import resource
import sys
import time
import warnings

# The machine is shared: spinning OpenMP threads slow everyone's small ops
# down (must be set before torch is imported).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from sklearn.frozen import FrozenEstimator  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402

from skdiffusion import (  # noqa: E402
    DiffusionFeaturizer,
    PeriodicPatches,
    SiteWiseRegressor,
    StreamingRidgeCV,
    SurrogateForecaster,
)
from skdiffusion.datasets import make_lorenz96  # noqa: E402
from skdiffusion.metrics import nrmse, valid_prediction_time  # noqa: E402

RECIPE = {"learning_rate": 3e-3, "dtype": "float32"}


def peak_memory_mb():
    """Peak resident memory of this process so far, MB (Linux: kB units)."""
    scale = 1 / 1024 if sys.platform != "darwin" else 1 / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def per_size(sizes, site_batch, steps, n_states_transform):
    """Training s/step and transform s/state-site per ring size."""
    rows = []
    for n_sites in sizes:
        rng = np.random.default_rng(0)
        X = rng.standard_normal((max(site_batch // n_sites, 1) * 4, n_sites))
        X = X.astype(np.float32)
        batch = max(site_batch // n_sites, 1)
        featurizer = DiffusionFeaturizer(architecture="conv", batch_size=batch,
                                         max_iter=2, random_state=0, **RECIPE)
        featurizer.fit(X)  # warm-up: allocations, first-call costs
        featurizer.set_params(max_iter=steps)
        start = time.perf_counter()
        featurizer.fit(X)
        per_step = (time.perf_counter() - start) / steps
        states = max(n_states_transform * 40 // n_sites, 1)
        Z = rng.standard_normal((states, n_sites)).astype(np.float32)
        featurizer.transform(Z[:1])
        start = time.perf_counter()
        featurizer.transform(Z)
        per_site = (time.perf_counter() - start) / (states * n_sites)
        rows.append((n_sites, batch, per_step, per_site))
    base_step, base_site = rows[0][2], rows[0][3]
    print(f"{'sites':>6} {'batch':>6} {'s/step':>9} {'ratio':>6} "
          f"{'us/state-site':>14} {'ratio':>6}")
    for n_sites, batch, step, site in rows:
        print(f"{n_sites:>6} {batch:>6} {step:>9.4f} {step / base_step:>6.2f} "
              f"{1e6 * site:>14.2f} {site / base_site:>6.2f}", flush=True)


def end_to_end(n_sites, n_states, steps, site_batch, n_starts, n_leads, head_radius,
               head_stride):
    """Data, fit and rollouts on one ring; wall time of each and peak memory."""
    times = {}
    start = time.perf_counter()
    train = make_lorenz96(2, n_states // 2, n_dim=n_sites, dt=0.05, lead_steps=2,
                          random_state=0, dtype=np.float32)
    test = make_lorenz96(1, 2 * n_leads + 2 * n_starts + 2, n_dim=n_sites, dt=0.05,
                         lead_steps=2, random_state=1, dtype=np.float32)
    times["data"] = time.perf_counter() - start
    start = time.perf_counter()
    featurizer = DiffusionFeaturizer(
        architecture="conv", max_iter=steps, batch_size=max(site_batch // n_sites, 1),
        lr_schedule="cosine", random_state=0, **RECIPE,
    ).fit(train.X)
    times["featurizer fit"] = time.perf_counter() - start
    start = time.perf_counter()
    per_site = len(featurizer.get_feature_names_out()) // n_sites
    model = make_pipeline(
        FrozenEstimator(featurizer),
        PeriodicPatches(head_radius, n_site_features=per_site),
        SiteWiseRegressor(StreamingRidgeCV(standardize=True, random_state=0)),
    ).fit(train.X[::head_stride], train.y[::head_stride])
    times["ridge fit"] = time.perf_counter() - start
    start = time.perf_counter()
    states = ((test.trajectories[0] - test.shift) / test.scale)[::2]
    truth = np.stack([states[i : i + n_leads + 1] for i in range(n_starts)])
    forecaster = SurrogateForecaster(FrozenEstimator(model), ring=True)
    forecaster.fit(states[:-1], states[1:])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        forecast = forecaster.forecast(truth[:, 0], n_leads)
    times["rollout"] = time.perf_counter() - start
    one_step = nrmse(truth[:, 1], forecast[:, 1], std=1.0)
    vpt = valid_prediction_time(truth, forecast, dt=0.1, std=1.0)
    print(f"{n_sites} sites, {len(train.X)} training states "
          f"({len(train.X) * n_sites:.2e} state-sites), {steps} featurizer steps, "
          f"ridge on every {head_stride}th state ({per_site} features a site, "
          f"{2 * head_radius + 1} sites), "
          f"{n_starts} rollouts of {n_leads} steps: one-step nRMSE {one_step:.3f}, "
          f"VPT {vpt:.2f} MTU")
    for part, seconds in times.items():
        print(f"  {part:<15} {seconds:8.1f} s")
    print(f"  {'total':<15} {sum(times.values()):8.1f} s wall; peak memory "
          f"{peak_memory_mb():.0f} MB", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="40,100,200,500,1000")
    parser.add_argument("--site-batch", type=int, default=10_240,
                        help="state-sites per training batch (256 states of 40)")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--n-states", type=int, default=1_000,
                        help="training states of the 1000-site run")
    parser.add_argument("--e2e-steps", type=int, default=300)
    parser.add_argument("--head-radius", type=int, default=2)
    parser.add_argument("--head-stride", type=int, default=4)
    args = parser.parse_args()
    print(f"python benchmarks/bench_spatial_cost.py --sizes {args.sizes} --site-batch "
          f"{args.site_batch} --steps {args.steps} --n-states {args.n_states} "
          f"--e2e-steps {args.e2e_steps} --head-radius {args.head_radius} "
          f"--head-stride {args.head_stride}; {os.cpu_count()} CPU cores, torch "
          f"{torch.get_num_threads()} threads, load {os.getloadavg()[0]:.1f}")
    sizes = [int(n) for n in args.sizes.split(",")]
    per_size(sizes, args.site_batch, args.steps, n_states_transform=500)
    start = time.perf_counter()
    end_to_end(sizes[-1], args.n_states, args.e2e_steps, args.site_batch,
               n_starts=16, n_leads=30, head_radius=args.head_radius,
               head_stride=args.head_stride)
    print(f"End-to-end wall time {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
