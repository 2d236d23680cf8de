"""Data assimilation with diffusion-model ensembles (the paper's section 5).

Twin experiments on Lorenz 1963: all three variables observed every 0.1 MTU
with error std 2, the perfect model between observations.
"""

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .. import DiffusionFeaturizer
from .._base import progress
from ..assimilation import (
    ETKF,
    LORENZ63_B_DIAGONAL,
    LORENZ63_B_FULL,
    ClimatologyEnsemble,
    DiffusionEnsemble,
    EnOI,
    StaticCovarianceEnsemble,
    ThreeDVar,
    run_twin_experiment,
    tune_twin_experiment,
)
from ..datasets import LORENZ63_SCALE, LORENZ63_SHIFT, make_lorenz63
from . import _common as common

OBS_EVERY = 10  # 0.1 MTU at dt = 0.01
OBS_ERROR_STD = 2.0  # model units
SCORES = ("analysis_rmse", "background_rmse", "analysis_spread", "background_spread")


@dataclass(frozen=True)
class AssimilationPreset:
    """Sizes and grids of :func:`run_assimilation_experiment`; defaults: "quick".

    ``featurizer``: parameters of the :class:`~skdiffusion.DiffusionFeaturizer`.
    Twin experiments have ``*_burn_in`` cycles, then ``*_cycles`` scored.
    """

    n_train_trajectories: int = 8
    n_train_steps: int = 5_000
    featurizer: dict = common.params(n_hidden=128, max_iter=800, batch_size=1024)
    n_members: int = 50
    n_steps: int = 100
    tau_grid: tuple = (30, 60, 90, 130, 180)
    static_inflations: tuple = (1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0)
    etkf_inflations: tuple = (1.0, 1.05, 1.1, 1.2, 1.3, 1.4, 1.6)
    n_tune_experiments: int = 8
    n_tune_burn_in: int = 30
    n_tune_cycles: int = 200
    n_test_experiments: int = 16
    n_test_burn_in: int = 50
    n_test_cycles: int = 400


PRESETS = {
    "quick": AssimilationPreset(),
    # The paper's sizes, for a GPU: 16 x 10^6 training states, tuning with
    # 1000 burn-in and 5000 scored cycles, scoring with 5000 and 50000.
    "paper": AssimilationPreset(
        n_train_trajectories=16,
        n_train_steps=1_000_000,
        featurizer={**common.PAPER_FEATURIZER, "n_hidden": 256},
        tau_grid=tuple(range(50, 301, 10)),
        static_inflations=(1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 5.0, 6.0, 8.0),
        etkf_inflations=(1.0, 1.02, 1.05, 1.07, 1.1, 1.15, 1.2, 1.3, 1.34, 1.4, 1.5),
        n_tune_experiments=16,
        n_tune_burn_in=1_000,
        n_tune_cycles=5_000,
        n_test_burn_in=5_000,
        n_test_cycles=50_000,
    ),
}


def _methods(featurizer, p):
    """(name, method, parameter grid) of every tuned method."""
    n, inflations = p.n_members, list(p.static_inflations)
    diffusion = DiffusionEnsemble(featurizer, n_members=n, n_steps=p.n_steps)
    diffusion.set_params(shift=LORENZ63_SHIFT, scale=LORENZ63_SCALE)
    diagonal = StaticCovarianceEnsemble(LORENZ63_B_DIAGONAL, n_members=n)
    full = StaticCovarianceEnsemble(LORENZ63_B_FULL, n_members=n)
    etkf = {"inflation": list(p.etkf_inflations)}
    return [
        ("diffusion EnOI", EnOI(diffusion), {"sampler__tau": list(p.tau_grid)}),
        ("static diagonal EnOI", EnOI(diagonal), {"sampler__inflation": inflations}),
        ("static full EnOI", EnOI(full), {"sampler__inflation": inflations}),
        ("3D-Var", ThreeDVar(LORENZ63_B_FULL), {"inflation": inflations}),
        ("ETKF (3)", ETKF(3), etkf),
        ("ETKF (12)", ETKF(12), etkf),
    ]


def _segments(trajectories, length, n_segments):
    """Cut long trajectories into ``n_segments`` pieces of ``length`` steps."""
    per_trajectory = trajectories.shape[1] // length
    pieces = trajectories[:, : per_trajectory * length].reshape(-1, length, 3)
    if len(pieces) < n_segments:
        raise ValueError(f"The training data hold fewer than {n_segments} segments.")
    return pieces[:n_segments]


def _row(stage, method, point, scores, n_experiments):
    """A table row: scores pooled by root mean square over experiments."""
    ((parameter, value),) = point.items() if point else (("", np.nan),)
    rmse = np.atleast_1d(scores["analysis_rmse"])
    pooled = {key: np.sqrt(np.mean(np.square(scores[key]))) for key in SCORES}
    # standard error of the per-experiment RMSE (NaN for pooled tuning scores)
    se = rmse.std(ddof=1) / np.sqrt(rmse.size) if rmse.size > 1 else np.nan
    parameter = parameter.replace("sampler__", "")
    names = ("stage", "method", "parameter", "value", "n_experiments")
    row = zip(names, (stage, method, parameter, value, n_experiments), strict=True)
    return {**dict(row), **pooled, "analysis_rmse_se": se}


def run_assimilation_experiment(
    preset="quick", *, featurizer=None, output_dir=None, random_state=0, verbose=False
):
    """Compare diffusion-model EnOI with static EnOI, 3D-Var and the ETKF.

    Tunes each method's free parameter (``tau`` of the diffusion ensembles,
    an inflation otherwise) on twin experiments on the training
    trajectories, then scores the tuned methods and the climatology on test
    trajectories. Static EnOI uses the paper's diagonal or full covariance,
    3D-Var the full one.

    Parameters
    ----------
    preset : {"quick", "paper"} or AssimilationPreset, default="quick"
        ``"quick"``: minutes on two CPU cores; ``"paper"``: the paper's
        sizes, for a GPU.
    featurizer : DiffusionFeaturizer, default=None
        Fitted on normalised Lorenz 1963 states; None trains one with the
        preset's ``featurizer`` parameters.
    output_dir : str, path or None, default=None
        If given, write ``assimilation.csv``.
    random_state : int, default=0
        Seeds the data, the training, the observations and the sampling.
    verbose : bool, default=False
        Report progress.

    Returns
    -------
    table : pandas.DataFrame
        One row per method and stage ("tuning" for every grid point, "test"
        for the tuned methods): ``parameter``, ``value``, the normalised
        analysis and background RMSE and spread (root mean square over
        ``n_experiments``) and ``analysis_rmse_se``, the standard error of
        the per-experiment analysis RMSE.
    """
    preset = common.preset_of(preset, PRESETS)
    seed_train, seed_test, seed_fit, seed_obs = common.seeds_from(random_state, 4)
    n_train, n_steps = preset.n_train_trajectories, preset.n_train_steps
    train = make_lorenz63(n_train, n_steps, random_state=seed_train)
    if featurizer is None:
        featurizer = DiffusionFeaturizer(**preset.featurizer, random_state=seed_fit)
        # quiet afterwards: the twin experiments sample once per cycle
        featurizer.set_params(verbose=verbose).fit(train.X).set_params(verbose=0)
    length = OBS_EVERY * (preset.n_tune_burn_in + preset.n_tune_cycles) + 1
    tune = _segments(train.trajectories, length, preset.n_tune_experiments)
    length = OBS_EVERY * (preset.n_test_burn_in + preset.n_test_cycles) + 1
    test = make_lorenz63(preset.n_test_experiments, length, random_state=seed_test)
    test = test.trajectories
    twin = dict(obs_every=OBS_EVERY, obs_error_std=OBS_ERROR_STD, scale=LORENZ63_SCALE)
    methods = _methods(featurizer, preset)
    rows = []
    with progress(len(methods), desc="assimilation", verbose=verbose, every=1) as bar:
        for name, method, grid in methods:
            tuning = {"n_burn_in": preset.n_tune_burn_in, "random_state": seed_obs}
            search = tune_twin_experiment(method, grid, tune, **tuning, **twin)
            for i, point in enumerate(search.results["params"]):
                scores = {key: search.results[key][i] for key in SCORES}
                rows.append(_row("tuning", name, point, scores, len(tune)))
            result = run_twin_experiment(
                search.best_method,
                test,
                n_burn_in=preset.n_test_burn_in,
                random_state=seed_obs + 1,
                **twin,
            )
            rows.append(_row("test", name, search.best_params, result, len(test)))
            bar.set_postfix_str(f"{name} {search.best_params}")
            bar.update()
    rows.append(_climatology(train.trajectories, test, preset, seed_obs))
    table = pd.DataFrame(rows)
    common.save(table, output_dir, "assimilation")
    return table


def _climatology(train_trajectories, test, preset, seed):
    """The no-skill row: climatological members in place of an analysis."""
    scored = test[:, OBS_EVERY * (preset.n_test_burn_in + 1) :: OBS_EVERY]
    climate = ClimatologyEnsemble(
        train_trajectories.reshape(-1, 3), n_members=preset.n_members
    )
    members = climate.sample_ensemble(scored.reshape(-1, 3), random_state=seed)
    members = members.reshape(*scored.shape[:2], *members.shape[1:]) / LORENZ63_SCALE
    truth = scored / LORENZ63_SCALE
    rmse = np.sqrt(((members.mean(axis=2) - truth) ** 2).mean(axis=(1, 2)))
    spread = np.sqrt(members.var(axis=2, ddof=1).mean(axis=(1, 2)))
    scores = dict(zip(SCORES, (rmse, rmse, spread, spread), strict=True))
    return _row("test", "climatology", {}, scores, len(test))
