"""The eigendecomposition behind StreamingRidgeCV's penalty path: threads.

``StreamingRidgeCV`` solves every penalty from one symmetric
eigendecomposition of the normal equations (``scipy.linalg.eigh``, LAPACK's
tridiagonal reduction: level-2 BLAS, a thread barrier per column). This
prints its wall and CPU time for systems of the sizes the package meets (256
to 3072 features) with the BLAS on one thread and on all of them, and their
ratio, in one run. Run it on an idle machine and again with two busy
processes (``--busy 2`` starts them) to see both sides.

``--accuracy`` instead fits the main job's RFF(1536)+ridgeCV surrogate of
Lorenz 63 (quick preset data; penalty chosen on held-out trajectories) with
the eigendecomposition on one thread and on two, and with the directions
whose eigenvalues lie below the rounding level dropped or kept, and prints
each one's chosen penalty and rollout errors: how much the threads move a
tiny-penalty solution, and what dropping those directions would cost.

    python benchmarks/bench_ridge_path.py
    python benchmarks/bench_ridge_path.py --busy 2
    python benchmarks/bench_ridge_path.py --accuracy
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


def _eigh(threads, drop):
    """StreamingRidgeCV's eigendecomposition on ``threads``; with ``drop``,
    eigenvalues below the rounding level become infinite: every penalty then
    gives their directions a coefficient of 0."""

    def eigh(system):
        with threadpool_limits(threads, user_api="blas"):
            eigenvalues, vectors = linalg.eigh(system)
        if drop:
            rounding = len(system) * np.finfo(np.float64).eps * eigenvalues[-1]
            eigenvalues[eigenvalues <= rounding] = np.inf
        return eigenvalues, vectors

    return staticmethod(eigh)


def accuracy():
    """Rollout errors of the tuned RFF(1536) surrogate, per variant and seed."""
    import dataclasses
    import warnings

    from skdiffusion import SurrogateForecaster, linear_model
    from skdiffusion.experiments import _common as common
    from skdiffusion.experiments import surrogate

    warnings.simplefilter("ignore", UserWarning)  # alpha at the grid's edge
    preset = dataclasses.replace(
        surrogate.PRESETS["quick"], n_climate=2, climate_leads=2
    )
    train, test = common.lorenz63_data(preset, random_state=0)
    print(f"{'seed':>4} {'eigen-directions':<17} {'threads':>7} {'alpha':>6} "
          f"{'nRMSE@0.1':>10} {'nRMSE@1':>9} {'nRMSE@5':>9}")
    for seed in (1, 2):
        for drop in (False, True):
            for threads in (1, 2):
                linear_model._NormalEquations._eigh = _eigh(threads, drop)
                model = surrogate.MODELS["RFF(1536)+ridgeCV"][1](preset, seed, {})
                forecaster = SurrogateForecaster(model).fit(
                    train.X, train.X + train.y, groups=train.groups
                )
                curve = surrogate.rollout_skill(forecaster, test, preset)["curve"]
                print(f"{seed:>4} {'dropped' if drop else 'kept':<17} {threads:>7} "
                      f"{forecaster.regressor_.alpha_:>6.0e} {curve[1]:>10.2e} "
                      f"{curve[10]:>9.2e} {curve[50]:>9.2e}", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="256,1536,3072")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--busy", type=int, default=0, help="busy processes to start")
    parser.add_argument("--accuracy", action="store_true",
                        help="rollout errors of a tuned surrogate per variant")
    args = parser.parse_args()
    if args.accuracy:
        accuracy()
        return
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
