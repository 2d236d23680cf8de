"""What the checks against silent NaN cost where they run in loops.

- ``rk4``: a finiteness test of the state after every step, for a small
  batch (16 Lorenz 63 states), against none. ``rk4`` tests once, after the
  loop, because of this cost.
- ``cache``: the CRC-32 of a cached array (``make_*`` with a disk cache),
  against copying the array in memory.

Prints the median extra CPU time over interleaved repeats.

    python benchmarks/bench_validation_cost.py [--repeats N]
"""

import argparse
import time
import zlib

import numpy as np

from skdiffusion.datasets._systems import _lorenz63


def _integrate(x, n_steps, test_each_step):
    for _ in range(n_steps):
        k1 = _lorenz63(x)
        k2 = _lorenz63(x + 0.005 * k1)
        k3 = _lorenz63(x + 0.005 * k2)
        k4 = _lorenz63(x + 0.01 * k3)
        x = x + 0.01 / 6 * (k1 + 2 * (k2 + k3) + k4)
        if test_each_step and not np.isfinite(x).all():
            raise ValueError("blew up")
    return x


def _cpu_time(function, *args):
    start = time.process_time()
    function(*args)
    return time.process_time() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    repeats = parser.parse_args().repeats

    x0 = np.random.default_rng(0).normal(size=(16, 3)) * 5 + [0.0, 0.0, 25.0]
    ratios = [
        _cpu_time(_integrate, x0, 3000, True) / _cpu_time(_integrate, x0, 3000, False)
        for _ in range(repeats)
    ]
    print(f"rk4, a test per step: {np.median(ratios) - 1:+.0%} CPU time "
          f"(median of {repeats} interleaved pairs of 3000 steps, 16 states)")

    array = np.random.default_rng(0).normal(size=12_500_000)  # 100 MB
    ratios = [
        _cpu_time(zlib.crc32, memoryview(array).cast("B"))
        / _cpu_time(np.copy, array)
        for _ in range(max(3, repeats // 6))
    ]
    print(f"cache, CRC-32 of 100 MB: {np.median(ratios):.2f} x the CPU time of a "
          "copy in memory")


if __name__ == "__main__":
    main()
