"""Scaling studies: surrogate skill against data size, target noise and lead time."""

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from .._base import progress
from ..datasets import pairs_from_trajectories
from ..metrics import nrmse
from . import _common as common
from .surrogate import MODELS, fit_featurizers

STUDIES = ("n_pairs", "target_noise", "lead_time")
LEAD_STEPS = 10  # the default target: 10 steps of 0.01, 0.1 MTU
DEFAULT_MODELS = (
    "transfer(6 t)+ridge", "transfer(6 t)+ridgeCV", "dense(2x256)",
    "RFF(1536)+ridge", "RFF(1536)+ridgeCV",
)


@dataclass(frozen=True)
class ScalingPreset:
    """Sizes and recipes of :func:`scaling_studies`; the defaults are "quick".

    Networks train ``max_iter`` steps, at most ``max_epochs`` passes over
    the pairs; the rest (``stream_heads`` included) is as in
    :class:`SurrogatePreset`.
    """

    n_seeds: int = 1
    n_train_trajectories: int = 8
    n_train_steps: int = 2_500
    n_test_trajectories: int = 2
    n_test_steps: int = 2_500
    n_test_pairs: int = 4_096
    n_pairs: tuple = (16, 128, 1_024, 8_192)
    target_noise: tuple = (0.01, 0.1, 1.0)
    lead_steps: tuple = (1, 10, 50)
    ridge_alpha: float = 1e-4
    chunk_size: int = 4_096
    width: int = 256
    max_iter: int = 1_000
    max_epochs: int = 200
    # cosine decay from 3e-3, as in SurrogatePreset
    network: dict = common.params(
        learning_rate=3e-3, lr_schedule="cosine", batch_size=256
    )
    head: dict = common.params(learning_rate=3e-4, batch_size=256)
    featurizer: dict = common.params(max_iter=200, batch_size=1024)
    # shallow heads ("+shallow" models) compute their features batch by batch
    stream_heads: bool = False


PRESETS = {
    "quick": ScalingPreset(),
    # The paper's ranges (8 .. 2^20 pairs, noise 0.005 .. 1, lead 0.01 .. 1
    # MTU) and recipes, for a GPU; the pool is 2^20 training states.
    "paper": ScalingPreset(
        n_seeds=10,
        n_train_trajectories=16,
        n_train_steps=65_536 + 100,
        n_test_trajectories=16,
        n_test_steps=10_000,
        n_test_pairs=100_000,
        n_pairs=tuple(2**k for k in range(3, 21)),
        target_noise=(0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0),
        lead_steps=(1, 2, 5, 10, 20, 50, 100),
        chunk_size=65_536,
        max_iter=100_000,
        max_epochs=100_000,
        network={"learning_rate": 5e-5, "batch_size": 16_384},
        head={"learning_rate": 5e-5, "batch_size": 16_384},
        featurizer=common.PAPER_FEATURIZER,
        stream_heads=True,
    ),
}


def _budget(preset, n_pairs):
    """The preset with network budgets for ``n_pairs`` training pairs."""

    def steps(network):
        batch = min(network["batch_size"], n_pairs)
        epoch = -(-n_pairs // batch)
        max_iter = min(preset.max_iter, preset.max_epochs * epoch)
        return {**network, "batch_size": batch, "max_iter": max_iter}

    return replace(preset, network=steps(preset.network), head=steps(preset.head))


def _tasks(preset, studies, train, test, rng):
    """(study, value, (X, y) to train on, (X, y) to test on) of every run."""

    def test_pairs(lead):
        X, y, _ = pairs_from_trajectories(test.states, lead_steps=lead)
        keep = np.linspace(0, len(X) - 1, min(preset.n_test_pairs, len(X)))
        return X[keep.astype(int)], y[keep.astype(int)]

    X, y, _ = pairs_from_trajectories(train.states, lead_steps=LEAD_STEPS)
    if "n_pairs" in studies:
        for n in preset.n_pairs:
            pick = rng.choice(len(X), size=min(n, len(X)), replace=False)
            yield "n_pairs", n, (X[pick], y[pick]), test_pairs(LEAD_STEPS)
    if "target_noise" in studies:
        for std in preset.target_noise:
            noisy = y + rng.normal(scale=std, size=y.shape)
            yield "target_noise", std, (X, noisy), test_pairs(LEAD_STEPS)
    if "lead_time" in studies:
        for lead in preset.lead_steps:
            pairs = pairs_from_trajectories(train.states, lead_steps=lead)
            yield "lead_time", lead * 0.01, pairs[:2], test_pairs(lead)


def _score(model, X, y):
    # no model: persistence, which predicts no change
    y_pred = np.zeros_like(y) if model is None else model.predict(X)
    return {"nrmse": nrmse(y, y_pred, std=1.0), "fit_time": 0.0}


def scaling_studies(
    preset="quick",
    *,
    studies=STUDIES,
    models=DEFAULT_MODELS,
    output_dir=None,
    random_state=0,
    verbose=False,
):
    """Surrogate skill against training pairs, target noise and lead time.

    One diffusion featurizer per seed is pre-trained on all training states
    and shared, frozen, by the transfer models; the heads and the other
    models learn from random subsets of the pairs (``"n_pairs"``), from all
    pairs with Gaussian noise on the targets (``"target_noise"``, std in
    normalised units), or with the increment over other lead times
    (``"lead_time"``). Skill is the nRMSE of the increment on clean test
    pairs; a "persistence" row (no change) gives the target's scale.

    Parameters
    ----------
    preset : {"quick", "paper"} or ScalingPreset, default="quick"
        ``"quick"``: minutes on two CPU cores; ``"paper"``: the paper's
        ranges and training sizes, for a GPU.
    studies : sequence of {"n_pairs", "target_noise", "lead_time"}
        The studies to run; all by default.
    models : sequence of str
        Labels from ``skdiffusion.experiments.surrogate.MODELS``; by default
        each ridge model with the paper's penalty and with one chosen on a
        held-out quarter of the training pairs.
    output_dir : str, path or None, default=None
        If given, write ``scaling.csv``.
    random_state : int, default=0
        Seeds the data, the subsets, the noise and the models.
    verbose : bool, default=False
        Report progress.

    Returns
    -------
    table : pandas.DataFrame
        Columns ``study``, ``value`` (pairs, noise std, or lead time in
        MTU), ``model``, ``seed``, ``nrmse`` and ``fit_time`` (s).
    """
    preset = common.preset_of(preset, PRESETS)
    common.check_names("studies", studies, STUDIES)
    common.check_names("model(s)", models, MODELS)
    data_seed, *seeds = common.seeds_from(random_state, 1 + preset.n_seeds)
    train, test = common.lorenz63_data(preset, random_state=data_seed)
    pretrained = any(MODELS[name][0] in ("transfer", "untrained") for name in models)
    rows = []
    for seed in seeds:
        featurizers = fit_featurizers(train.X, preset, seed) if pretrained else {}
        tasks = list(_tasks(preset, studies, train, test, np.random.default_rng(seed)))
        total = len(tasks) * len(models)
        with progress(total, desc="scaling", verbose=verbose, every=1) as bar:
            for study, value, (X, y), (X_test, y_test) in tasks:
                run = {"study": study, "value": value, "model": "persistence"}
                rows.append({**run, "seed": seed, **_score(None, X_test, y_test)})
                budget = _budget(preset, len(X))
                for name in models:
                    model = MODELS[name][1](budget, seed, featurizers)
                    scores = common.fit_and_score(model, X, y, _score, X_test, y_test)
                    rows.append({**run, "model": name, "seed": seed, **scores})
                    bar.set_postfix_str(f"{study}={value:g} {name}")
                    bar.update()
    table = pd.DataFrame(rows)
    common.save(table, output_dir, "scaling")
    return table
