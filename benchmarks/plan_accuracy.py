"""How far to trust a plan's time: each Lorenz 63 experiment's plan for its
quick preset against a real run of that preset, in the same process.

The plan (``experiment_plan``, what ``--dry-run`` prints) scales a probe
of a few seconds by the preset's rows and steps; the run is the experiment
function on one process (``n_jobs=None``), as the plan assumes. Printed:
planned and measured seconds and their ratio. The memory column is checked
by ``benchmarks/paper_preset_memory.py`` instead, at the paper's sizes.

    python benchmarks/plan_accuracy.py
    python benchmarks/plan_accuracy.py --experiments selection generation
"""

import argparse
import time
import warnings

RUNS = {
    "surrogate": "surrogate_comparison",
    "selection": "model_selection",
    "scaling": "scaling_studies",
    "generation": "generation_quality",
    "assimilation": "run_assimilation_experiment",
}


def main():
    from skdiffusion import experiments

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiments", nargs="+", default=list(RUNS),
                        choices=list(RUNS))
    args = parser.parse_args()
    print(f"{'experiment':<14}{'planned s':>11}{'measured s':>12}{'ratio':>8}",
          flush=True)
    for name in args.experiments:
        planned = experiments.experiment_plan(name, "quick")["cpu_s"].sum()
        run = getattr(experiments, RUNS[name])
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            run("quick")
        measured = time.perf_counter() - start
        print(f"{name:<14}{planned:>11.0f}{measured:>12.0f}"
              f"{measured / planned:>8.2f}", flush=True)


if __name__ == "__main__":
    main()
