"""Speed and memory of ``DiffusionFeaturizer.transform``.

Measured in one run, for the paper's network (256 units, 3 blocks) at the
paper's 6 feature times (1536 features):

* throughput of ``transform`` in states/s, and its rate of multiply-adds as a
  fraction of the rate of a plain torch matmul of the blocks' shape (chunk x
  256 times 256 x 256), measured alongside it (target: at least 50 %);
* the speed-up over the obvious way to get the same features: the network's
  per-sample FiLM path (``Denoiser.film`` on every row's step, then
  ``Denoiser.trunk``) at each time, then ``np.concatenate``;
* the peak memory ``transform`` adds, in a fresh subprocess, as a multiple of
  its float32 output (target: below 2), next to the same for the obvious way.

Usage::

    python benchmarks/bench_featurizer.py           # 10^6 states for memory
    python benchmarks/bench_featurizer.py --quick   # 2 x 10^5 states

Timings are the best of a few interleaved repetitions, so that load from
other processes on the machine hurts all three measurements alike.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time

# The machine is shared: threads that spin while waiting slow everyone's small
# ops down (set before torch is imported; the memory subprocess inherits it).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from skdiffusion import DiffusionFeaturizer  # noqa: E402
from skdiffusion.featurizers import _TRANSFORM_CHUNK  # noqa: E402

N_HIDDEN, N_BLOCKS = 256, 3
TIMES = (0, 50, 100, 200, 400, 600)


def featurizer(n_features=3):
    """The default network, untrained: training does not change the speed."""
    X = np.random.default_rng(0).normal(size=(1000, n_features))
    return DiffusionFeaturizer(
        n_hidden=N_HIDDEN, n_blocks=N_BLOCKS, feature_times=TIMES, max_iter=0,
        device="cpu", random_state=0,
    ).fit(X)


def flops_per_state(n_features=3):
    """Multiply-adds (x2) of the linear layers that produce the features."""
    block = 2 * (2 * N_HIDDEN * N_HIDDEN)
    return 2 * n_features * N_HIDDEN + len(TIMES) * N_BLOCKS * block


def naive_features(model, X, mean, scale):
    """Per-sample FiLM at each time, then concatenation: the obvious way."""
    z = torch.from_numpy(((X - mean) / scale).astype(np.float32))
    parts = []
    with torch.inference_mode():
        for time_ in TIMES:
            film = model.film(torch.full((len(X),), time_))
            parts.append(model.trunk(z, film).numpy())
    return np.concatenate(parts, axis=1)


def best_seconds(run, repeats):
    return min(_timed(run) for _ in range(repeats))


def _timed(run):
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def speed(n_states, repeats):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(n_states, 3))
    fitted = featurizer()
    model, _ = fitted._network()
    a = torch.randn(_TRANSFORM_CHUNK, N_HIDDEN)
    weight, bias = torch.randn(N_HIDDEN, N_HIDDEN), torch.randn(N_HIDDEN)
    # as many GEMMs as the transform's blocks do
    n_gemm = -(-n_states // _TRANSFORM_CHUNK) * len(TIMES) * N_BLOCKS * 2

    def matmul():
        with torch.inference_mode():
            for _ in range(n_gemm):
                F.linear(a, weight, bias)

    np.testing.assert_allclose(  # same features both ways
        fitted.transform(X[:64]),
        naive_features(model, X[:64], fitted.mean_, fitted.scale_),
        rtol=1e-4, atol=1e-5,
    )
    times = {"matmul": [], "transform": [], "naive": []}
    for _ in range(repeats):  # interleaved, so load hits all three alike
        times["matmul"].append(_timed(matmul))
        times["transform"].append(_timed(lambda: fitted.transform(X)))
        times["naive"].append(
            _timed(lambda: naive_features(model, X, fitted.mean_, fitted.scale_))
        )
    best = {name: min(seconds) for name, seconds in times.items()}
    matmul_rate = n_gemm * 2 * _TRANSFORM_CHUNK * N_HIDDEN**2 / best["matmul"]
    transform_rate = n_states * flops_per_state() / best["transform"]
    print(f"transform of {n_states} states, {len(TIMES)} times x {N_HIDDEN} "
          f"features, chunks of {_TRANSFORM_CHUNK} rows, "
          f"{torch.get_num_threads()} torch threads, "
          f"OMP_WAIT_POLICY={os.environ['OMP_WAIT_POLICY']}")
    print(f"  transform   {n_states / best['transform']:12,.0f} states/s  "
          f"{transform_rate / 1e9:7.1f} GFLOP/s")
    print(f"  naive       {n_states / best['naive']:12,.0f} states/s")
    print(f"  matmul      {matmul_rate / 1e9:30.1f} GFLOP/s "
          f"({_TRANSFORM_CHUNK}x{N_HIDDEN} @ {N_HIDDEN}x{N_HIDDEN})")
    print(f"  fraction of matmul rate: {transform_rate / matmul_rate:.0%} "
          "(target >= 50 %)")
    print(f"  speed-up over naive:     {best['naive'] / best['transform']:.1f}x")


def _rss_bytes():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize()


def memory_child(n_states, how):
    """Run in a fresh process: print the peak memory one transform adds."""
    fitted = featurizer()
    X = np.random.default_rng(2).normal(size=(n_states, 3))
    fitted.transform(X[:10])  # build the network before measuring
    before = _rss_bytes()
    if how == "transform":
        out = fitted.transform(X)
    else:
        out = naive_features(fitted._network()[0], X, fitted.mean_, fitted.scale_)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB
    print(json.dumps({"added": peak - before, "output": out.nbytes}))


def memory(n_states, how):
    child = subprocess.run(
        [sys.executable, __file__, "--memory-child", str(n_states), how],
        capture_output=True, text=True, check=True,
    )
    result = json.loads(child.stdout.splitlines()[-1])
    return result["added"] / result["output"], result["output"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes")
    parser.add_argument("--memory-child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        memory_child(int(args.memory_child[0]), args.memory_child[1])
        return
    speed(10_000 if args.quick else 50_000, repeats=3)

    n_memory = 200_000 if args.quick else 1_000_000
    ratio, output = memory(n_memory, "transform")
    print(f"peak memory added by transform of {n_memory} states: {ratio:.2f}x "
          f"the output ({output / 1e9:.2f} GB float32; target < 2)")
    # the obvious way holds every time's block and the concatenation; the
    # ratio hardly depends on the size, and the per-sample FiLM path is slow
    n_naive = 50_000
    naive_ratio, _ = memory(n_naive, "naive")
    print(f"  naive, {n_naive} states: {naive_ratio:.2f}x its output")


if __name__ == "__main__":
    main()
