"""``make demo``: the quick surrogate comparison, its table and the paper's claim.

``python -m skdiffusion.experiments [--preset quick|paper] [--n-seeds N]
[--output-dir DIR] [--random-state N] [--quiet]``; ``--experiment spatial
[--preset quick|gpu]`` runs the Lorenz 96 comparison instead.
"""

import os

# Passive OpenMP waiting keeps torch's small-network steps from spinning
# against other processes on shared cores (measured 10x slower otherwise).
# It only takes effect before torch is first imported, hence here.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402


def _machine():
    import torch

    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU"
    return (
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPU cores, "
        f"torch {torch.__version__} with {torch.get_num_threads()} threads, "
        f"{gpu}, load average {os.getloadavg()[0]:.1f}"
    )


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m skdiffusion.experiments")
    parser.add_argument("--experiment", default="surrogate",
                        choices=["surrogate", "spatial"])
    parser.add_argument("--preset", default="quick", choices=["quick", "paper", "gpu"])
    parser.add_argument("--n-seeds", type=int, help="default: 3 quick, 10 paper")
    parser.add_argument("--output-dir", help="write the tables (CSV) and figure")
    parser.add_argument("--random-state", type=int, default=0)
    parser.add_argument("--quiet", action="store_true", help="no progress")
    args = parser.parse_args(argv)
    if args.experiment == "spatial":
        return _spatial(args)
    if args.preset == "gpu":
        parser.error("--preset gpu is a preset of --experiment spatial")
    from skdiffusion.experiments import surrogate

    preset = surrogate.PRESETS[args.preset]
    if args.n_seeds is not None:
        preset = dataclasses.replace(preset, n_seeds=args.n_seeds)
    print(f"Machine: {_machine()}", flush=True)
    start = time.perf_counter()
    run = {"output_dir": args.output_dir, "random_state": args.random_state}
    table = surrogate.surrogate_comparison(preset, **run, verbose=not args.quiet)
    wall = time.perf_counter() - start
    summary = surrogate.summarize_surrogates(table)
    print(
        f"\nLorenz 63 surrogates ({args.preset} preset): nRMSE (normalised units) "
        "at lead times in MTU, Hellinger distance of the long-run climate, share "
        f"of rollouts that blew up\n{surrogate.format_summary(summary)}\n"
    )
    verdict = surrogate.transfer_vs_scratch(summary)
    low, high = verdict["scratch_range"]
    print(
        f"From-scratch networks at 0.1 MTU: nRMSE {low:.2e} .. {high:.2e} "
        "(5 %-95 % over seeds, all four networks)"
    )
    for model, (median, within) in verdict["transfer"].items():
        where = "within" if within else ("below" if median < low else "above")
        print(f"  {model:<27} median {median:.2e}: {where} that range")
    print(f"\nWall time {wall:.0f} s; {_machine()}")


def _spatial(args):
    from skdiffusion.experiments import spatial

    preset = spatial.PRESETS[args.preset]
    if args.n_seeds is not None:
        preset = dataclasses.replace(preset, n_seeds=args.n_seeds)
    print(f"Machine: {_machine()}", flush=True)
    start = time.perf_counter()
    table = spatial.spatial_surrogate_comparison(
        preset, output_dir=args.output_dir, random_state=args.random_state,
        verbose=not args.quiet,
    )
    print(
        f"\nLorenz 96 surrogates, {preset.n_sites} sites ({args.preset} preset, "
        f"median of {preset.n_seeds} seeds): one-step nRMSE and nRMSE at leads "
        "(MTU; normalised by the climatological std), valid prediction time in "
        "MTU and Lyapunov times, fit CPU seconds\n"
        f"{spatial.format_summary(spatial.summarize_spatial(table))}"
    )
    print(f"\nWall time {time.perf_counter() - start:.0f} s; {_machine()}")


if __name__ == "__main__":
    main()
