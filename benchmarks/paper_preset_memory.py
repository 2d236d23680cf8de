"""Peak host memory of the surrogate comparison's ``paper`` preset, stage by
stage, on its full data, against the plan that ``--dry-run`` prints.

A rehearsal of one seed: the preset's 1.76e7 Lorenz 63 states, the same
featurizers, models, chunk sizes and rollouts (16,384 starts, 1,024 climate
rollouts of 1,000 steps), in the order ``surrogate_comparison`` runs them on
one process, but every network trained for ``--steps`` steps instead of
97,700 (a step's memory does not grow with their number). The ridge heads
stream all 1.6e7 training rows, as in the preset. Each stage's peak resident
set size is read from the kernel (``VmHWM``, reset between stages through
``/proc/self/clear_refs``: Linux only) and printed beside the plan's
estimate (its arrays plus the process after the probe), with the stage's wall
time beside the plan's time for one seed (capped stages: per step).

    python benchmarks/paper_preset_memory.py                  # every model
    python benchmarks/paper_preset_memory.py --models "poly(4)+ridgeCV" \
        "dense(3x256)" "transfer(t=0,400)+shallow"
"""

import argparse
import dataclasses
import time
import warnings

import numpy as np


def _status_kb(field):
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"No {field} in /proc/self/status.")


def _reset_peak():
    # "5" resets the peak RSS (VmHWM) to the current RSS (Linux >= 4.0)
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")


def _stage(name, call, plan_row, capped, base_gb):
    """Run one stage; print and return its peak RSS and time beside the plan."""
    _reset_peak()
    start = time.perf_counter()
    result = call()
    wall = time.perf_counter() - start
    peak = _status_kb("VmHWM") * 1024 / 1e9
    planned = plan_row["memory_gb"] + base_gb
    plan_s = plan_row["cpu_s"] / plan_row["runs"]
    time_note = "capped" if capped else f"{wall / plan_s:5.2f}x"
    print(
        f"{name:<28}{peak:>8.2f}{planned:>8.2f}{peak / planned:>7.2f}"
        f"{wall:>9.0f}{plan_s:>11,.0f}  {time_note}",
        flush=True,
    )
    return result, peak


def _plan_row(plan, model):
    """The plan's row of a model (its label without "+shallow")."""
    label = model.replace("+shallow", "")
    rows = plan[plan["stage"].str.contains(label, regex=False)]
    return rows.iloc[0]


def main():
    from skdiffusion.experiments import _common as common
    from skdiffusion.experiments import _plan, surrogate

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(surrogate.MODELS))
    parser.add_argument("--steps", type=int, default=20,
                        help="training steps of every network (the preset: 97,700)")
    parser.add_argument("--random-state", type=int, default=0)
    args = parser.parse_args()
    common.check_names("model(s)", args.models, surrogate.MODELS)
    paper = surrogate.PRESETS["paper"]
    start = time.perf_counter()
    timing = _plan.probe(paper)
    plan = _plan.surrogate_plan(paper, timing)
    print(f"plan (probe): {time.perf_counter() - start:.0f} s", flush=True)

    def capped(recipe):
        return {**recipe, "max_iter": args.steps}

    preset = dataclasses.replace(
        paper, n_seeds=1, network=capped(paper.network), head=capped(paper.head),
        featurizer=capped(paper.featurizer),
    )
    print(
        f"Paper preset, one seed, networks capped at {args.steps} steps: peak RSS "
        f"per stage (GB) against the plan (arrays + {timing.process_gb:.2f} GB), "
        "wall time (s) "
        "against the plan's for one seed"
    )
    print(f"{'stage':<28}{'peak':>8}{'plan':>8}{'ratio':>7}{'wall':>9}"
          f"{'plan wall':>11}  time ratio")
    # the seeds and order of surrogate_comparison with n_jobs=None
    data_seed, climate_seed, seed = common.seeds_from(args.random_state, 3)

    def data():
        train, test = common.lorenz63_data(preset, random_state=data_seed)
        floor = surrogate.climate_floor(test, preset, random_state=climate_seed)
        return train, test, floor

    base = timing.process_gb
    (train, test, _), _ = _stage("data", data, plan.iloc[0], False, base)
    pretrained = any(
        surrogate.MODELS[name][0] in ("transfer", "untrained") for name in args.models
    )
    featurizers, _ = _stage(
        "featurizers", lambda: surrogate._pretrain(train.X, preset, seed, pretrained),
        plan.iloc[1], True, base,
    )
    peaks = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # alpha at the grid's edge
        for name in args.models:
            kind = surrogate.MODELS[name][0]
            _, peaks[name] = _stage(
                name,
                lambda name=name: surrogate._fit_and_score(
                    name, seed, featurizers, train, test, preset
                ),
                _plan_row(plan, name),
                kind == "scratch" or name.endswith("shallow"), base,
            )
    largest = max(peaks.values(), default=np.nan)
    print(
        f"\nLargest stage peak {largest:.2f} GB (the plan's largest: "
        f"{plan['memory_gb'].max() + base:.2f} GB); "
        f"{time.perf_counter() - start:.0f} s in all."
    )
    materialised = dataclasses.replace(paper, stream_heads=False)
    unstreamed = _plan._shallow_stage(
        materialised, "transfer", plan.iloc[1]["rows"], timing
    )["memory_gb"]
    print(
        f"A shallow head on materialised features would plan {unstreamed:.1f} GB: "
        f"{unstreamed / largest:.0f}x this run's "
        "largest stage."
    )


if __name__ == "__main__":
    main()
