"""How fast make_lorenz63 generates states, against scipy.integrate.solve_ivp.

The default size is the paper's training set: 16 trajectories x 10^6 steps
(1.6e7 states, dt=0.01), to be made in under 60 s on 2 cores. The alternative a
user would pick is solve_ivp on the same 16 trajectories stacked into one
48-variable system, states reported on the same dt grid (t_eval), at a
tolerance that gives about our accuracy over 1 MTU (printed). solve_ivp runs on
fewer steps and its rate is extrapolated (it is per step, so this is fair).

Both are single-threaded Python loops, so on a shared machine the CPU time
(time.process_time) is the stable figure; rates and ratios use it, and the
wall-clock time of the paper-scale run is printed next to it.

Run: python benchmarks/bench_datasets.py [--quick]
"""

import argparse
import resource
import tempfile
import time

import numpy as np
from scipy.integrate import solve_ivp

from skdiffusion.datasets import lorenz63, make_lorenz63, rk4

DT = 0.01
N_TRAJECTORIES = 16


def stacked_field(t, y):
    return lorenz63(y.reshape(-1, 3)).ravel()


def error_over_one_mtu(starts, method, tol):
    """Largest error after 1 MTU against DOP853 at rtol 1e-12."""
    reference = solve_ivp(stacked_field, (0, 1), starts.ravel(), method="DOP853",
                          rtol=1e-12, atol=1e-12).y[:, -1]
    if method == "rk4":
        final = rk4(lorenz63, starts, DT, round(1 / DT), return_trajectory=False)
    else:
        final = solve_ivp(stacked_field, (0, 1), starts.ravel(), method=method,
                          rtol=tol, atol=tol).y[:, -1]
    return np.abs(final.ravel() - reference).max()


def timed(func, *args, **kwargs):
    """Call func; return its result, wall-clock and CPU seconds."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = func(*args, **kwargs)
    return result, time.perf_counter() - wall, time.process_time() - cpu


def time_solve_ivp(starts, n_steps, method, tol):
    """States per CPU second of solve_ivp on all trajectories at once."""
    times = np.arange(n_steps) * DT
    solution, _, cpu = timed(solve_ivp, stacked_field, (0, times[-1]),
                             starts.ravel(), method=method, rtol=tol, atol=tol,
                             t_eval=times)
    assert solution.success
    return starts.shape[0] * n_steps / cpu


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="16 x 10^4 steps instead of 16 x 10^6")
    args = parser.parse_args()
    n_steps = 10_000 if args.quick else 1_000_000
    n_steps_scipy = 2_000 if args.quick else 20_000

    n_states = N_TRAJECTORIES * n_steps
    print(f"make_lorenz63({N_TRAJECTORIES}, {n_steps:_}): {n_states:.2e} states")
    with tempfile.TemporaryDirectory() as data_home:
        kwargs = dict(random_state=0, cache=True, data_home=data_home)
        data, wall, cpu = timed(make_lorenz63, N_TRAJECTORIES, n_steps, **kwargs)
        del data
        _, reload, _ = timed(make_lorenz63, N_TRAJECTORIES, n_steps, **kwargs)
    ours = n_states / cpu
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"  generated (incl. writing the cache) in {wall:.1f} s wall-clock, "
          f"{cpu:.1f} s CPU: {n_states / wall:.3g} states/s wall-clock, "
          f"{ours:.3g} per CPU second")
    print(f"  second call, from the cache: {reload:.1f} s; "
          f"peak memory {peak_mb:.0f} MB")
    if not args.quick:
        verdict = "under" if cpu < 60 else "OVER"
        print(f"  paper scale: {verdict} the 60 s target in CPU time "
              f"({'under' if wall < 60 else 'over'} it in wall-clock time)")

    starts = make_lorenz63(N_TRAJECTORIES, 2, lead_steps=1,
                           random_state=0).trajectories[:, 0]
    print(f"\nsolve_ivp on {N_TRAJECTORIES} x {n_steps_scipy:_} steps, "
          "rate extrapolated; error = max |x - x_DOP853| after 1 MTU")
    print(f"{'integrator':<24}{'error':>10}{'states/CPU s':>14}{'ours / it':>11}")
    print(f"{'make_lorenz63 (RK4)':<24}"
          f"{error_over_one_mtu(starts, 'rk4', None):>10.1e}{ours:>14.3g}"
          f"{1.0:>11.2f}")
    for method, tol in [("RK45", 1e-6), ("DOP853", 1e-6), ("LSODA", 1e-7)]:
        rate = time_solve_ivp(starts, n_steps_scipy, method, tol)
        error = error_over_one_mtu(starts, method, tol)
        print(f"{f'{method} tol {tol:.0e}':<24}{error:>10.1e}{rate:>14.3g}"
              f"{ours / rate:>11.2f}")
    print("\nMeasured on a possibly shared machine: compare the ratios.")


if __name__ == "__main__":
    main()
