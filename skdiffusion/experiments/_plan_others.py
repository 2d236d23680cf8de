"""What the presets of the other experiments will cost, before they run.

The stages of :func:`~skdiffusion.experiments.model_selection`,
:func:`~skdiffusion.experiments.scaling_studies`,
:func:`~skdiffusion.experiments.generation_quality` and
:func:`~skdiffusion.experiments.run_assimilation_experiment`, in the columns
of :func:`~skdiffusion.experiments._plan.surrogate_plan`: the same probe of
this CPU times the networks and feature maps; the twin experiments of data
assimilation are timed by a few cycles of each method. A stage that runs
on the CPU whatever the machine (integration, the methods without a
network) has no GPU time.
"""

import time
from math import ceil

import numpy as np
import pandas as pd

from ._plan import (
    _F32,
    _F64,
    GPU_FLOPS,
    _feature_costs,
    _featurizer_stage,
    _network_weights,
    _stage,
    _transform_flops,
)

_STATS_ROWS = 65_536  # rows a streamed shallow head computes statistics on
_LEAD, _BURN_IN = 10, 5_000


def _lorenz63(n_trajectories, n_steps, timing):
    """Rows, bytes held (trajectories, X, y, states, groups), integration s."""
    rows = n_trajectories * (n_steps - _LEAD)
    held = n_trajectories * n_steps * 3 * _F64 * 2 + rows * (2 * 3 + 1) * _F64
    # RK4 is vectorised over up to 16 trajectories at once
    seconds = ceil(n_trajectories / 16) * (n_steps + _BURN_IN) * timing.integrate
    return rows, held, seconds


def selection_plan(preset, timing):
    """The stages of a model-selection preset (streamed or cached heads)."""
    p = preset
    rows, held, seconds = _lorenz63(p.n_trajectories, p.n_steps, timing)
    fold, held_out = rows * (p.n_splits - 1) // p.n_splits, rows // p.n_splits
    fits = p.n_splits + 1  # the folds and, at most, the refit of the best
    how = "streamed" if p.stream_heads else "cached"
    stages = [
        _stage("data: Lorenz 63 (RK4)", 1, rows, 3, held, seconds, np.nan),
        _featurizer_stage(p, 1, rows, held, timing),
    ]
    shapes = (fits, fold, held_out, held)
    for kind in ("RFF(1536)", "poly(4)", "diffusion(6 t)"):
        stages.append(_selection_ridge(p, kind, shapes, how, timing))
        stages.append(_selection_shallow(p, kind, shapes, how, timing))
    return pd.DataFrame(stages)


def _selection_ridge(p, kind, shapes, how, timing):
    """A ridge head on a feature map over the folds (and the refit)."""
    fits, fold, held_out, held = shapes
    per_row, flops, n_features = _feature_costs(kind, timing)
    accumulate = timing.accumulate * (n_features / 1536) ** 2
    if p.stream_heads:  # a few chunks' features, never the fold's
        memory = 3 * p.chunk_size * n_features * _F64 + 3 * n_features**2 * _F64
    else:  # the fold's features and their copy on disk reloaded
        memory = 2 * fold * n_features * _F64
    return _stage(
        f"ridge head on {kind} ({how})", fits, fold, n_features, held + memory,
        fits * ((fold + held_out) * per_row + fold * accumulate),
        fits * (fold + held_out) * (flops + 2 * n_features**2) / GPU_FLOPS,
    )


def _selection_shallow(p, kind, shapes, how, timing):
    """A one-hidden-layer head on a feature map over the folds (and the refit)."""
    fits, fold, held_out, held = shapes
    per_row, flops, n_features = _feature_costs(kind, timing)
    steps, batch = p.head["max_iter"], p.head["batch_size"]
    head_row = timing.head_step * (n_features + 3) / (512 + 3)
    if p.stream_heads:  # every step computes its batch's features again
        feature_rows = steps * batch + _STATS_ROWS + held_out
        memory = 3 * batch * n_features * _F32
    else:  # the cached features and the network's float32 copy
        feature_rows, memory = 0, fold * n_features * (_F64 + _F32)
    return _stage(
        f"shallow head on {kind} ({how})", fits, fold, n_features, held + memory,
        fits * (steps * batch * head_row + feature_rows * per_row),
        fits * (steps * batch * 6 * (n_features + 3) * p.width
                + feature_rows * flops) / GPU_FLOPS,
    )


def scaling_plan(preset, timing, models):
    """The stages of a scaling-studies preset, for the given model labels."""
    from .scaling import LEAD_STEPS

    p = preset
    rows, held, seconds = _lorenz63(p.n_train_trajectories, p.n_train_steps, timing)
    test_rows, test_held, test_seconds = _lorenz63(
        p.n_test_trajectories, p.n_test_steps, timing
    )
    pairs = rows + p.n_train_trajectories * (_LEAD - LEAD_STEPS)
    sizes = [min(n, pairs) for n in p.n_pairs]
    sizes += [pairs] * len(p.target_noise) + [pairs] * len(p.lead_steps)
    n_tests = len(sizes) * p.n_test_pairs
    stages = [
        _stage("data: Lorenz 63 train + test (RK4)", 1, rows + test_rows, 3,
               held + test_held, seconds + test_seconds, np.nan),
    ]
    if any(name.startswith(("transfer", "untrained")) for name in models):
        stages.append(_featurizer_stage(p, p.n_seeds, rows, held, timing))
    for name in models:
        stages.append(_scaling_model(p, name, sizes, n_tests, held, timing))
    return pd.DataFrame(stages)


def _scaling_model(p, name, sizes, n_tests, held, timing):
    """One model over every training set of every study and seed."""
    runs, total = p.n_seeds * len(sizes), sum(sizes)
    if "+ridge" in name:
        per_row, flops, n_features = _feature_costs(name, timing)
        read = total * (1.25 if name.endswith("CV") else 1.0) + n_tests
        memory = 3 * p.chunk_size * n_features * _F64 + 4 * n_features**2 * _F64
        return _stage(
            f"{name} (streamed)", runs, max(sizes), n_features, held + memory,
            p.n_seeds * (read * per_row + total * timing.accumulate
                         * (n_features / 1536) ** 2),
            p.n_seeds * read * (flops + 2 * n_features**2) / GPU_FLOPS,
        )
    # a network: max_iter steps, at most max_epochs passes
    shallow = name.endswith("+shallow")
    batch = (p.head if shallow else p.network)["batch_size"]
    trained = sum(
        min(p.max_iter, p.max_epochs * ceil(n / min(batch, n))) * min(batch, n)
        for n in sizes
    )
    if shallow:
        return _scaling_shallow(p, name, runs, sizes, trained, held, timing)
    weights = _network_weights(name, p.width)
    return _stage(
        name, runs, max(sizes), 3, held + 4 * max(sizes) * 3 * _F32,
        p.n_seeds * trained * timing.network_step.get(
            name, timing.network_step["dense(2x256)"]),
        p.n_seeds * trained * 6 * weights / GPU_FLOPS,
    )


def _scaling_shallow(p, name, runs, sizes, trained, held, timing):
    """A shallow head on the features at t = 0 and 400 (512 columns)."""
    per_row = timing.diffusion / 3  # two of the six times
    if p.stream_heads:  # every training row's features computed again
        feature_rows, memory = trained, 3 * p.head["batch_size"] * 512 * _F32
    else:  # the features of each training set, float64 and a float32 copy
        feature_rows, memory = sum(sizes), max(sizes) * 512 * (_F64 + _F32)
    how = "streamed" if p.stream_heads else "features materialised"
    return _stage(
        f"{name} ({how})", runs, max(sizes), 512, held + memory,
        p.n_seeds * (trained * timing.head_step + feature_rows * per_row),
        p.n_seeds * (trained * 6 * (512 + 3) * p.width
                     + feature_rows * _transform_flops(n_times=2)) / GPU_FLOPS,
    )


def generation_plan(preset, timing):
    """The stages of a generation-quality preset."""
    from .generation import PARAMETERIZATIONS, SCHEDULES

    p = preset
    rows, held, seconds = _lorenz63(p.n_train_trajectories, p.n_train_steps, timing)
    test_rows, test_held, test_seconds = _lorenz63(
        p.n_test_trajectories + 1, p.n_test_steps, timing
    )
    runs = p.n_seeds * len(PARAMETERIZATIONS) * len(SCHEDULES)
    held += test_held
    forwards = runs * p.n_samples * p.n_sampling_steps
    return pd.DataFrame([
        _stage("data: Lorenz 63 train + test (RK4)", 1, rows + test_rows, 3,
               held, seconds + test_seconds, np.nan),
        _featurizer_stage(
            p, runs, rows, held, timing, "featurizer training (each model)"
        ),
        _stage(
            f"sampling: {p.n_sampling_steps} steps of {p.method}", runs,
            p.n_samples, 3, held + 4 * p.n_samples * 3 * _F64,
            # one network pass per step: a sixth of the six-time features
            forwards * timing.diffusion / 6,
            forwards * _transform_flops(n_times=1) / GPU_FLOPS,
        ),
    ])


def assimilation_plan(preset, timing, cycle_seconds=None):
    """The stages of a data-assimilation preset.

    ``cycle_seconds`` maps each method to its seconds per cycle of
    ``n_tune_experiments`` twin experiments at once (the diffusion ensemble
    at ``tau=130``); measured by :func:`probe_cycles` when None.
    """
    from .assimilation import OBS_EVERY, _methods

    p = preset
    rows, held, seconds = _lorenz63(p.n_train_trajectories, p.n_train_steps, timing)
    cycle_seconds = probe_cycles(p) if cycle_seconds is None else cycle_seconds
    tune = p.n_tune_burn_in + p.n_tune_cycles
    test = p.n_test_burn_in + p.n_test_cycles
    test_held = p.n_test_experiments * (OBS_EVERY * test + 1) * 3 * _F64 * 3
    stages = [
        _stage("data: Lorenz 63 (RK4)", 1, rows, 3, held, seconds, np.nan),
        _featurizer_stage(p, 1, rows, held, timing),
    ]
    per_experiment = p.n_test_experiments / p.n_tune_experiments
    for name, _, grid in _methods(None, p):
        ((_, values),) = grid.items()
        cost = cycle_seconds[name]
        steps = [1.0] * len(values)
        if name.startswith("diffusion"):  # denoised in tau-proportional steps
            base = ceil(130 * p.n_steps / 1000)
            steps = [max(1, ceil(tau * p.n_steps / 1000)) / base for tau in values]
        cpu = cost * (sum(steps) * tune + max(steps) * test * per_experiment)
        gpu = np.nan
        if name.startswith("diffusion"):
            forwards = p.n_members * p.n_tune_experiments * base * (
                sum(steps) * tune + max(steps) * test * per_experiment
            )
            gpu = forwards * _transform_flops(n_times=1) / GPU_FLOPS
        stages.append(_stage(
            f"{name}: {len(values)} tuned, then tested", len(values) + 1,
            p.n_test_experiments * test, 3, held + test_held, cpu, gpu,
        ))
    climatology = p.n_test_experiments * p.n_test_cycles * p.n_members * 3 * _F64
    stages.append(_stage(
        "climatology members", 1, p.n_test_experiments * p.n_test_cycles, 3,
        held + test_held + 3 * climatology, 0.0, np.nan,
    ))
    return pd.DataFrame(stages)


def probe_cycles(preset, n_cycles=4):
    """Seconds per cycle of each method, on the preset's tuning experiments.

    A briefly trained featurizer of the preset's network stands in for the
    trained one (its cost does not depend on the weights).
    """
    from ..assimilation import run_twin_experiment
    from ..datasets import LORENZ63_SCALE, make_lorenz63
    from ..featurizers import DiffusionFeaturizer
    from .assimilation import OBS_ERROR_STD, OBS_EVERY, _methods

    p = preset
    states = make_lorenz63(4, 600, random_state=0, cache=False)
    featurizer = DiffusionFeaturizer(
        **{**p.featurizer, "max_iter": 2, "batch_size": 256}, random_state=0,
        device="cpu",
    ).fit(states.X)
    length = OBS_EVERY * n_cycles + 1
    truth = make_lorenz63(p.n_tune_experiments, length, random_state=1, cache=False)
    seconds = {}
    for name, method, _ in _methods(featurizer, p):
        if name.startswith("diffusion"):
            method.set_params(sampler__tau=130)
        start = time.perf_counter()
        run_twin_experiment(
            method, truth.trajectories, obs_every=OBS_EVERY,
            obs_error_std=OBS_ERROR_STD, scale=LORENZ63_SCALE, n_burn_in=0,
            random_state=0,
        )
        seconds[name] = (time.perf_counter() - start) / n_cycles
    return seconds


def experiment_plan(experiment, preset="paper"):
    """What an experiment's preset will cost, before it runs.

    A probe of a few seconds times every network and feature map on this
    CPU (and, for the data assimilation, four cycles of each method); the
    plan scales it by the preset's rows and steps. ``python -m
    skdiffusion.experiments --dry-run`` prints it.

    Parameters
    ----------
    experiment : {"surrogate", "selection", "scaling", "generation", \
            "assimilation"}
        The Lorenz 63 experiment (:func:`surrogate_comparison`,
        :func:`model_selection`, :func:`scaling_studies` with its default
        models, :func:`generation_quality`, :func:`run_assimilation_experiment`).
    preset : str or preset object, default="paper"
        A name from the experiment's ``PRESETS``, or a preset.

    Returns
    -------
    plan : pandas.DataFrame
        One row per stage: ``stage``, ``runs``, ``rows`` and ``columns`` of
        its data, ``memory_gb`` (peak resident memory of the process: this
        process after the probe plus the stage's arrays), ``cpu_s`` (all
        runs, this CPU) and ``gpu_s`` (one GPU at 19.5 TFLOP/s, a lower
        bound; NaN for stages without a network).

    Examples
    --------
    >>> from skdiffusion.experiments import experiment_plan
    >>> plan = experiment_plan("selection", "paper")  # doctest: +SKIP
    >>> bool(plan["memory_gb"].max() < 16)  # doctest: +SKIP
    True
    """
    import importlib

    from . import _common as common
    from ._plan import probe, surrogate_plan
    from .scaling import DEFAULT_MODELS

    common.check_names("experiment", [experiment], TITLES)
    module = importlib.import_module(f".{experiment}", __package__)
    preset = common.preset_of(preset, module.PRESETS)
    plans = {
        "surrogate": surrogate_plan,
        "selection": selection_plan,
        "scaling": lambda p, timing: scaling_plan(p, timing, DEFAULT_MODELS),
        "generation": generation_plan,
        "assimilation": assimilation_plan,
    }
    timing = probe(preset)
    plan = plans[experiment](preset, timing)
    plan["memory_gb"] += timing.process_gb
    return plan


# the experiments with a plan, as the command line names them
TITLES = {
    "surrogate": "Surrogate comparison",
    "selection": "Model selection",
    "scaling": "Scaling studies",
    "generation": "Generation quality",
    "assimilation": "Lorenz 63 data assimilation",
}
