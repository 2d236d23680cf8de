"""The README's main job (``make demo``): the quick surrogate comparison.

Usage::

    python -m skdiffusion.experiments [--preset quick] [--n-seeds N]
                                      [--output-dir DIR] [--quiet]

Prints progress, the table of nRMSE by lead time, climate Hellinger
distance and blown-up rollouts (median and 5-95 % range over seeds),
whether the transfer models land within the seed range of the from-scratch
networks at 0.1 MTU, and the wall time and machine.
"""

import os

# Passive OpenMP waiting keeps torch's small-network steps from spinning
# against other processes on shared cores (measured 10x slower otherwise).
# It only takes effect before torch is first imported, hence here.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402


def _machine():
    import torch

    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    cpu = platform.processor() or platform.machine()
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU"
    text = (
        f"{platform.system()} {cpu}, {os.cpu_count()} CPU cores, "
        f"torch {torch.__version__} with {torch.get_num_threads()} threads, "
        f"{gpu}"
    )
    if load is not None:
        text += f", load average {load[0]:.1f}"
    return text


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m skdiffusion.experiments",
        description="Surrogate comparison of Finn et al. (2024), Table 3.",
    )
    parser.add_argument(
        "--preset",
        default="quick",
        choices=["quick", "paper"],
        help="quick: minutes on 2 CPU cores (default); paper: the paper's "
        "data and training sizes, for a GPU",
    )
    parser.add_argument(
        "--n-seeds", type=int, default=None, help="default: 3 quick, 10 paper"
    )
    parser.add_argument(
        "--output-dir",
        default=None,
        help="write surrogate_comparison.csv/.png and the summary",
    )
    parser.add_argument("--random-state", type=int, default=0)
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    args = parser.parse_args(argv)

    from skdiffusion.experiments import (
        format_summary,
        summarize_surrogates,
        surrogate_comparison,
        transfer_vs_scratch,
    )

    print(f"Machine: {_machine()}", flush=True)
    start = time.perf_counter()
    table = surrogate_comparison(
        args.preset,
        n_seeds=args.n_seeds,
        output_dir=args.output_dir,
        random_state=args.random_state,
        verbose=not args.quiet,
    )
    wall = time.perf_counter() - start
    summary = summarize_surrogates(table)
    print()
    print(
        f"Lorenz 63 surrogates ({args.preset} preset): nRMSE (normalised "
        "units) at lead times in MTU, Hellinger distance of the long-run "
        "climate, share of rollouts that blew up"
    )
    print(format_summary(summary))
    verdict = transfer_vs_scratch(summary)
    low, high = verdict["scratch_range"]
    print()
    print(
        f"From-scratch networks at 0.1 MTU: nRMSE {low:.2e} .. {high:.2e} "
        "(5 %-95 % over seeds, all four networks)"
    )
    for model, (median, within) in verdict["transfer"].items():
        where = "within" if within else ("below" if median < low else "above")
        print(f"  {model:<27} median {median:.2e}: {where} that range")
    print()
    print(f"Wall time {wall:.0f} s; {_machine()}")


if __name__ == "__main__":
    main()
