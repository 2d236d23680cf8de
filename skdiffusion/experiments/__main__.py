"""``make demo``: the quick surrogate comparison, its table and the paper's claim.

``python -m skdiffusion.experiments [--experiment NAME] [--preset quick|paper]
[--n-seeds N] [--n-jobs N] [--output-dir DIR] [--random-state N] [--quiet]
[--dry-run]``. ``--experiment`` is ``surrogate`` (the default), ``selection``,
``scaling``, ``generation`` or ``assimilation`` (Lorenz 63; ``--dry-run``
prints the stages' sizes, memory and time, and a paper preset prints them
before it starts), ``spatial [--preset quick|gpu]`` (the Lorenz 96
comparison) or ``assimilation96 [--preset quick|long]`` (Lorenz 96 data
assimilation).
"""

import argparse
import dataclasses
import os
import platform
import time

# Importing skdiffusion (before torch) sets passive OpenMP waiting.
from skdiffusion.experiments import (
    assimilation,
    assimilation_lorenz96,
    generation,
    scaling,
    selection,
    spatial,
    surrogate,
)

MODULES = {
    "surrogate": surrogate,
    "spatial": spatial,
    "assimilation96": assimilation_lorenz96,
    "selection": selection,
    "scaling": scaling,
    "generation": generation,
    "assimilation": assimilation,
}


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
    parser.add_argument("--experiment", default="surrogate", choices=list(MODULES))
    parser.add_argument("--preset", default="quick",
                        choices=["quick", "paper", "gpu", "long"])
    parser.add_argument("--n-seeds", type=int, help="default: 2 quick, 10 paper")
    parser.add_argument("--output-dir", help="write the tables (CSV) and figure")
    parser.add_argument("--random-state", type=int, default=0)
    parser.add_argument("--n-jobs", type=int,
                        help="surrogate and spatial experiments: processes "
                             "(default: all cores for the quick presets, else 1)")
    parser.add_argument("--quiet", action="store_true", help="no progress")
    parser.add_argument("--dry-run", action="store_true",
                        help="print each stage's size, memory and time; run nothing")
    args = parser.parse_args(argv)
    module = MODULES[args.experiment]
    if args.preset not in module.PRESETS:
        parser.error(f"--preset {args.preset} is not a preset of {args.experiment}")
    preset = module.PRESETS[args.preset]
    if args.n_seeds is not None and hasattr(preset, "n_seeds"):
        preset = dataclasses.replace(preset, n_seeds=args.n_seeds)
    print(f"Machine: {_machine()}", flush=True)
    # a paper run takes GPU-hours: its plan comes first, as --dry-run prints it
    if args.dry_run or args.preset == "paper":
        _print_plan(args.experiment, preset, args.preset, parser)
    if args.dry_run:
        return
    start = time.perf_counter()
    run = {"output_dir": args.output_dir, "random_state": args.random_state}
    # the quick models are small: a process per core; the larger share a GPU
    n_jobs = args.n_jobs if args.n_jobs is not None else (
        -1 if args.preset == "quick" else None
    )
    if module is assimilation_lorenz96:
        _print_assimilation96(args.preset, run, verbose=not args.quiet)
    elif module is spatial:
        table = spatial.spatial_surrogate_comparison(
            preset, **run, n_jobs=n_jobs, verbose=not args.quiet
        )
        _print_spatial(table, preset, args.preset)
    elif module is surrogate:
        table = surrogate.surrogate_comparison(
            preset, **run, n_jobs=n_jobs, verbose=not args.quiet
        )
        _print_surrogates(table, args.preset)
    else:
        _print_other(args.experiment, preset, args.preset, run, n_jobs, not args.quiet)
    print(f"\nWall time {time.perf_counter() - start:.0f} s; {_machine()}")


def _print_plan(experiment, preset, preset_name, parser):
    from skdiffusion.experiments import _plan, _plan_others

    if experiment not in _plan_others.TITLES:
        parser.error(
            f"--dry-run plans the {', '.join(_plan_others.TITLES)} experiments"
        )
    start = time.perf_counter()
    plan = _plan_others.experiment_plan(experiment, preset)
    print(
        f"{_plan_others.TITLES[experiment]}, {preset_name} preset: the stages, "
        "their data, peak host memory (GB) and time (s, all runs) on this CPU "
        "(probed) and on one GPU (estimated)\n"
        f"{_plan.format_plan(plan)}\n(probe and plan: "
        f"{time.perf_counter() - start:.0f} s)",
        flush=True,
    )


def _print_other(experiment, preset, preset_name, run, n_jobs, verbose):
    """Run one of the other experiments; print its table (medians over seeds)."""
    from skdiffusion.experiments._plan_others import TITLES

    if experiment == "selection":
        table = selection.model_selection(preset, **run, n_jobs=n_jobs, verbose=verbose)
        shown = table[["features", "head", "mean_nrmse", "std_nrmse", "mean_fit_time"]]
    elif experiment == "scaling":
        table = scaling.scaling_studies(preset, **run, verbose=verbose)
        groups = table.groupby(["study", "value", "model"], sort=False)["nrmse"]
        shown = groups.median().unstack("model")
    elif experiment == "generation":
        table = generation.generation_quality(preset, **run, verbose=verbose)
        shown = table.groupby("model", sort=False).median(numeric_only=True)
    else:
        table = assimilation.run_assimilation_experiment(preset, **run, verbose=verbose)
        shown = table[table["stage"] == "test"].drop(columns="stage")
    over_seeds = "; medians over seeds" if hasattr(preset, "n_seeds") else ""
    print(
        f"\n{TITLES[experiment]} ({preset_name} preset{over_seeds})\n"
        f"{shown.to_string(float_format=lambda value: f'{value:.3g}')}"
    )


def _print_surrogates(table, preset_name):
    summary = surrogate.summarize_surrogates(table)
    print(
        f"\nLorenz 63 surrogates ({preset_name} preset): nRMSE (normalised units) "
        "at lead times in MTU, valid prediction time (MTU), Hellinger distance "
        "of the long-run climate, share of rollouts that blew up\n"
        f"{surrogate.format_summary(summary)}\n"
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
    first = table[table["lead_time"] == 0].dropna(subset=["alpha"])
    per_seed = first.groupby("model", sort=False)["alpha"].agg(
        lambda alphas: ", ".join(f"{alpha:.0e}" for alpha in alphas)
    )
    print(
        "Ridge penalties per seed: '+ridge' the paper's, '+ridgeCV' chosen on "
        "held-out training trajectories"
    )
    for model, alphas in per_seed.items():
        print(f"  {model:<27} {alphas}")


def _print_spatial(table, preset, preset_name):
    print(
        f"\nLorenz 96 surrogates, {preset.n_sites} sites ({preset_name} preset, "
        f"median of {preset.n_seeds} seeds): one-step nRMSE and nRMSE at leads "
        "(MTU; normalised by the climatological std), valid prediction time in "
        "MTU and Lyapunov times, fit CPU seconds\n"
        f"{spatial.format_summary(spatial.summarize_spatial(table))}"
    )


def _print_assimilation96(preset_name, run, verbose):
    module = assimilation_lorenz96
    anchors = module.lorenz96_anchors(
        preset_name, random_state=run["random_state"], verbose=verbose
    )
    table = module.lorenz96_assimilation(preset_name, **run, verbose=verbose)
    p = module.PRESETS[preset_name]
    print(
        f"\nLorenz 96 data assimilation, {p.n_sites} sites ({preset_name} preset): "
        "time-mean analysis RMSE in model units, every site observed every "
        f"{p.obs_every * p.dt:g} MTU with R = I. Published anchors (DAPPER): "
        f"{p.n_anchor_experiments} experiments x {p.n_anchor_cycles} cycles "
        f"({p.n_anchor_cycles * p.obs_every * p.dt:g} MTU each) after "
        f"{p.n_anchor_burn_in}; then tuned methods on {p.n_test_experiments} "
        f"experiments x {p.n_test_cycles} cycles; featurizer fit "
        f"{table.attrs['fit_seconds']:.0f} s\n{module.format_tables(anchors, table)}"
    )


if __name__ == "__main__":
    main()
