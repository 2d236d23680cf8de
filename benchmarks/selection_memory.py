"""Peak host memory of the model-selection search, its heads reading a cached
feature matrix or streaming their features, up to the ``paper`` preset's
2^20 states.

``model_selection`` cross-validates three feature maps (1536 random Fourier,
degree-4 polynomial, 1536 diffusion features) x two heads (ridge, one hidden
layer) with ``GroupKFold(4)``. Cached (the quick preset's way): a pipeline
with ``memory`` computes each fold's features once for both heads, so a
fold's 1536 features are a matrix (float64, 9.7 GB at the paper's 786,432
training rows, and a copy on disk per fold and feature map). Streamed (the
paper preset's way): ``StreamingRidge(transformer=...)`` and
``ShallowHeadRegressor`` compute features chunk by chunk or batch by batch.
Every run is the paper preset's recipe with the featurizer and the heads
trained for ``--steps`` steps (a step's memory does not grow with their
number), on ``n_steps`` states per trajectory (16 trajectories), each in its
own process: its peak resident set size is its own (``ru_maxrss``).

    python benchmarks/selection_memory.py                 # 2^17, 2^20
    python benchmarks/selection_memory.py --sizes 8192 --modes cached
"""

import argparse
import dataclasses
import json
import resource
import subprocess
import sys
import time
import warnings


def run(mode, n_steps, steps):
    """One search in this process: its wall time, peak RSS and best model."""
    from skdiffusion.experiments import selection

    paper = selection.PRESETS["paper"]
    preset = dataclasses.replace(
        paper,
        n_steps=n_steps + 10,
        head={**paper.head, "max_iter": steps},
        featurizer={**paper.featurizer, "max_iter": steps},
        stream_heads=mode == "streamed",
    )
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        table = selection.model_selection(preset)
    best = table.iloc[0]
    print(json.dumps({
        "wall": time.perf_counter() - start,
        "peak": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,  # Linux
        "best": f"{best['features']} + {best['head']}",
        "nrmse": float(best["mean_nrmse"]),
    }))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[8_192, 65_536],
                        help="states per trajectory (the paper preset: 65,536)")
    parser.add_argument("--modes", nargs="+", default=["cached", "streamed"],
                        choices=["cached", "streamed"])
    parser.add_argument("--steps", type=int, default=20,
                        help="training steps of the featurizer and the shallow heads")
    parser.add_argument("--max-cached", type=int, default=8_192,
                        help="largest size run cached (65,536 needs > 24 GB)")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run(args.child[0], int(args.child[1]), args.steps)
        return
    print(
        f"Model selection, paper recipe, featurizer and heads {args.steps} steps; "
        "16 trajectories; peak RSS per run (own process)"
    )
    print(f"{'states':>10} {'mode':<9}{'peak GB':>9}{'wall s':>8}  best (mean nRMSE)")
    peaks = {}
    for n_steps in args.sizes:
        for mode in args.modes:
            if mode == "cached" and n_steps > args.max_cached:
                print(f"{16 * n_steps:>10,} {mode:<9}  skipped (--max-cached)")
                continue
            command = [sys.executable, __file__, "--steps", str(args.steps),
                       "--child", mode, str(n_steps)]
            out = subprocess.run(command, capture_output=True, text=True, check=True)
            result = json.loads(out.stdout.strip().splitlines()[-1])
            peaks[n_steps, mode] = result["peak"] / 1e9
            print(
                f"{16 * n_steps:>10,} {mode:<9}{peaks[n_steps, mode]:>9.2f}"
                f"{result['wall']:>8.0f}  {result['best']} ({result['nrmse']:.3g})",
                flush=True,
            )
        if (n_steps, "cached") in peaks and (n_steps, "streamed") in peaks:
            ratio = peaks[n_steps, "cached"] / peaks[n_steps, "streamed"]
            print(f"{'':>10} cached / streamed peak: {ratio:.1f}x")


if __name__ == "__main__":
    main()
