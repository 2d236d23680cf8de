"""A user's plain script: does training run as fast as with passive OpenMP waiting?

torch's OpenMP threads spin while they wait for work unless
``OMP_WAIT_POLICY=PASSIVE`` is set before torch is imported; on cores shared
with other processes the spinning threads take time from the work. Importing
skdiffusion sets it (when torch is not imported yet). This benchmark runs the
same plain script, a ``DiffusionFeaturizer`` fit, in fresh processes:

- ``package``: no environment variable, ``import skdiffusion`` first (what a
  user's script does);
- ``passive``: ``OMP_WAIT_POLICY=PASSIVE`` set in the environment;
- ``spinning``: ``import torch`` before skdiffusion, no variable (torch's
  default, what every script got before the package set it);

idle, then with two busy background processes, and prints the wall and CPU
time of the fit (median of the repeats) and the ratios against ``passive``.

    python benchmarks/bench_omp_wait.py [--repeats N] [--steps N]
"""

import argparse
import json
import os
import subprocess
import sys
import time

SCRIPT = """
import sys, time, json, warnings
warnings.simplefilter("ignore")
if sys.argv[1] == "spinning":
    import torch  # noqa: F401  (before skdiffusion: the policy cannot be set)
import numpy as np
from skdiffusion import DiffusionFeaturizer
X = np.random.default_rng(0).normal(size=(20_000, 3))
wall, cpu = time.perf_counter(), time.process_time()
DiffusionFeaturizer(max_iter=int(sys.argv[2]), random_state=0).fit(X)
print(json.dumps({"wall": time.perf_counter() - wall,
                  "cpu": time.process_time() - cpu}))
"""

BUSY = "while True: pass"


def run(variant, steps):
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if variant == "passive":
        env["OMP_WAIT_POLICY"] = "PASSIVE"
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, variant, str(steps)],
        env=env, capture_output=True, text=True, check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def measure(label, args):
    variants = ("package", "passive", "spinning")
    times = {v: [] for v in variants}
    for _ in range(args.repeats):
        for variant in variants:
            times[variant].append(run(variant, args.steps))
    median = {
        v: {k: sorted(t[k] for t in ts)[len(ts) // 2] for k in ("wall", "cpu")}
        for v, ts in times.items()
    }
    base = median["passive"]
    for variant in variants:
        wall, cpu = median[variant]["wall"], median[variant]["cpu"]
        print(
            f"{label:<22}{variant:<10}{wall:8.1f} s wall {cpu:8.1f} s CPU   "
            f"x{wall / base['wall']:.2f} wall  x{cpu / base['cpu']:.2f} CPU "
            "vs passive",
            flush=True,
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=60)
    args = parser.parse_args()
    print(f"DiffusionFeaturizer(max_iter={args.steps}) fit, median of "
          f"{args.repeats}; load average {os.getloadavg()[0]:.1f}")
    measure("as it is", args)
    busy = [subprocess.Popen([sys.executable, "-c", BUSY]) for _ in range(2)]
    try:
        time.sleep(1)
        measure("2 busy processes", args)
    finally:
        for process in busy:
            process.kill()


if __name__ == "__main__":
    main()
