"""Scaling studies: surrogate skill against data size, target noise and lead time."""

import math
import time
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from ._common import (
    DT,
    PAPER_FEATURIZER,
    Progress,
    lorenz63_data,
    make_table,
    records_to_columns,
    resolve_preset,
    save_outputs,
    seeds_from,
    table_columns,
)
from .surrogate import MODELS, build_model, fit_featurizers, transfer_parts

STUDIES = ("n_pairs", "target_noise", "lead_time")

DEFAULT_MODELS = ("transfer(6 t)+ridge", "dense(2x256)", "RFF(1536)+ridge")

PRESETS = {
    # Minutes on two CPU cores.
    "quick": {
        "n_seeds": 1,
        "n_train_trajectories": 8,
        "n_train_steps": 2_500,
        "n_test_trajectories": 2,
        "n_test_steps": 2_500,
        "n_test_pairs": 4_096,
        "n_pairs": (16, 128, 1_024, 8_192),
        "target_noise": (0.01, 0.1, 1.0),
        "lead_steps": (1, 10, 50),
        "ridge_alpha": 1e-4,
        "chunk_size": 4_096,
        "width": 256,
        # from-scratch networks get a budget of optimiser steps (not epochs),
        # so that small training sets are not starved
        "n_updates": 1_000,
        "max_epochs": 200,
        "network": {"learning_rate": 1e-3, "batch_size": 256},
        "head": {"learning_rate": 3e-4, "batch_size": 256},
        "featurizer": {"max_iter": 200, "batch_size": 1024},
    },
    # The paper's ranges (8 .. 2^20 pairs, noise 0.005 .. 1, lead 0.01 .. 1
    # MTU) and training recipes, for a GPU. The pool is the largest training
    # set, 2^20 states (their cached features take 6.4 GB).
    "paper": {
        "n_seeds": 10,
        "n_train_trajectories": 16,
        "n_train_steps": 65_536 + 100,
        "n_test_trajectories": 16,
        "n_test_steps": 10_000,
        "n_test_pairs": 100_000,
        "n_pairs": tuple(int(n) for n in 2 ** np.arange(3, 21)),
        "target_noise": (0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0),
        "lead_steps": (1, 2, 5, 10, 20, 50, 100),
        "ridge_alpha": 1e-4,
        "chunk_size": 65_536,
        "width": 256,
        "n_updates": 100_000,
        "max_epochs": 100_000,
        "network": {"learning_rate": 5e-5, "batch_size": 16_384},
        "head": {"learning_rate": 5e-5, "batch_size": 16_384},
        "featurizer": dict(PAPER_FEATURIZER),
    },
}


def _pairs(states, lead):
    """(X, y): states and their increments ``lead`` steps on, per trajectory."""
    X = states[:, :-lead].reshape(-1, states.shape[2])
    y = (states[:, lead:] - states[:, :-lead]).reshape(-1, states.shape[2])
    return X, y


def _with_budget(settings, n_samples):
    """Settings whose networks train ``n_updates`` optimiser steps on n samples."""
    updated = dict(settings)
    for key in ("network", "head"):
        batch = min(settings[key]["batch_size"], n_samples)
        epochs = math.ceil(settings["n_updates"] * batch / n_samples)
        updated[key] = {
            **settings[key],
            "batch_size": batch,
            "max_iter": max(1, min(settings["max_epochs"], epochs)),
        }
    return updated


def scaling_studies(
    preset="quick",
    *,
    studies=STUDIES,
    models=DEFAULT_MODELS,
    n_seeds=None,
    output_dir=None,
    random_state=0,
    verbose=False,
    **settings,
):
    """Surrogate skill against training pairs, target noise and lead time.

    One diffusion featurizer per seed is pre-trained on all training states
    (plenty of unlabeled data) and shared, frozen, by the transfer models;
    the heads and the from-scratch models then learn from:

    - ``"n_pairs"``: random subsets of the training pairs;
    - ``"target_noise"``: all pairs, with Gaussian noise of the given
      standard deviation (normalised units) added to the targets;
    - ``"lead_time"``: all pairs, with the target the increment over the
      given number of steps.

    Skill is the nRMSE (normalised units) of the predicted increment on
    held-out test pairs, without noise. A "persistence" row (predicting no
    change) gives the scale of each target.

    Parameters
    ----------
    preset : {"quick", "paper"}, default="quick"
        ``"quick"``: a few values per study, minutes on two CPU cores;
        ``"paper"``: the paper's ranges and training sizes (a GPU).
    studies : sequence of str, default=("n_pairs", "target_noise", "lead_time")
        Which studies to run.
    models : sequence of str, default=("transfer(6 t)+ridge", "dense(2x256)", \
"RFF(1536)+ridge")
        Model names from :data:`skdiffusion.experiments.surrogate.MODELS`.
    n_seeds : int or None, default=None
        Number of seeds; None takes the preset's.
    output_dir : str, path or None, default=None
        If given, write ``scaling.csv`` and ``scaling.png``.
    random_state : int, default=0
        Seeds the data, the subsets, the noise and the models.
    verbose : bool, default=False
        Print progress.
    **settings
        Overrides of the preset's settings; see ``PRESETS``.

    Returns
    -------
    table : pandas.DataFrame or dict of ndarray
        One row per study, value, model and seed with columns ``study``,
        ``value`` (pairs, noise std, or lead time in MTU), ``model``,
        ``seed``, ``nrmse`` and ``fit_time`` (s).
    """
    settings = resolve_preset(PRESETS, preset, {"n_seeds": n_seeds, **settings})
    unknown = sorted(set(studies) - set(STUDIES)) + sorted(set(models) - set(MODELS))
    if unknown:
        raise ValueError(
            f"Unknown studies or models {unknown}; studies are {list(STUDIES)}, "
            f"models {list(MODELS)}."
        )
    progress = Progress(verbose, "scaling")
    data_seed, *model_seeds = seeds_from(random_state, 1 + settings["n_seeds"])
    train, test = lorenz63_data(
        settings["n_train_trajectories"],
        settings["n_train_steps"],
        settings["n_test_trajectories"],
        settings["n_test_steps"],
        random_state=data_seed,
    )
    records = []
    for seed_index, seed in enumerate(model_seeds):
        rng = np.random.default_rng(seed)
        featurizers = {}
        if any(MODELS[name][0] in ("transfer", "untrained") for name in models):
            featurizers = fit_featurizers(train.X, settings, seed)
            progress(f"seed {seed_index}: featurizer trained")
        features = _FeatureCache(featurizers, train.states, test.states)
        for study, value, (X, y, rows), (X_test, y_test, test_rows) in _tasks(
            studies, settings, train.states, test.states, rng
        ):
            persistence = np.sqrt(np.mean(y_test**2))
            records.append(_record(study, value, "persistence", seed, persistence, 0.0))
            for name in models:
                nrmse, fit_time = _score(
                    name,
                    settings,
                    seed,
                    featurizers,
                    features,
                    X,
                    y,
                    rows,
                    X_test,
                    y_test,
                    test_rows,
                )
                records.append(_record(study, value, name, seed, nrmse, fit_time))
                progress(f"{study}={value:g} {name:<22} nRMSE {nrmse:.2e}")
    table = make_table(records_to_columns(records))
    save_outputs(output_dir, "scaling", table, plot_scaling, progress)
    return table


def _tasks(studies, settings, train_states, test_states, rng):
    """(study, value, train (X, y, rows), test (X, y, rows)) of every run.

    ``rows`` index the flattened states, so that features computed once
    for all states serve every run.
    """
    n_test = settings["n_test_pairs"]
    default_lead = 10

    def split(states, lead):
        X, y = _pairs(states, lead)
        n_traj, n_steps, _ = states.shape
        rows = (
            np.arange(n_traj)[:, None] * n_steps + np.arange(n_steps - lead)
        ).ravel()
        return X, y, rows

    def test_part(lead):
        X, y, rows = split(test_states, lead)
        keep = np.linspace(0, len(X) - 1, min(n_test, len(X))).astype(int)
        return X[keep], y[keep], rows[keep]

    if "n_pairs" in studies:
        X, y, rows = split(train_states, default_lead)
        for n in settings["n_pairs"]:
            pick = rng.choice(len(X), size=min(n, len(X)), replace=False)
            yield "n_pairs", n, (X[pick], y[pick], rows[pick]), test_part(default_lead)
    if "target_noise" in studies:
        X, y, rows = split(train_states, default_lead)
        for std in settings["target_noise"]:
            noisy = y + rng.normal(scale=std, size=y.shape)
            yield "target_noise", std, (X, noisy, rows), test_part(default_lead)
    if "lead_time" in studies:
        for lead in settings["lead_steps"]:
            yield "lead_time", lead * DT, split(train_states, lead), test_part(lead)


class _FeatureCache:
    """Each featurizer's features of all training and test states, computed once."""

    def __init__(self, featurizers, train_states, test_states):
        self.featurizers = featurizers
        self.states = {
            "train": train_states.reshape(-1, train_states.shape[2]),
            "test": test_states.reshape(-1, test_states.shape[2]),
        }
        self.cache = {}

    def get(self, kind, part):
        if (kind, part) not in self.cache:
            featurizer = self.featurizers[kind]
            self.cache[kind, part] = featurizer.transform(self.states[part])
        return self.cache[kind, part]


def _score(
    name, settings, seed, featurizers, features, X, y, rows, X_test, y_test, test_rows
):
    from ..metrics import nrmse

    kind = MODELS[name][0]
    settings = _with_budget(settings, len(X))
    if kind in ("transfer", "untrained"):
        # the featurizer's output is cached: fit the head on it
        transformer, model = transfer_parts(name, settings, seed, featurizers)
        columns = transformer.kw_args["columns"]
        X = features.get(kind, "train")[rows][:, columns]
        X_test = features.get(kind, "test")[test_rows][:, columns]
    else:
        model = build_model(name, settings, seed, featurizers)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X, y)
    fit_time = time.perf_counter() - start
    return nrmse(y_test, model.predict(X_test), std=1.0), fit_time


def _record(study, value, model, seed, nrmse, fit_time):
    return {
        "study": study,
        "value": float(value),
        "model": model,
        "seed": seed,
        "nrmse": float(nrmse),
        "fit_time": float(fit_time),
    }


_LABELS = {
    "n_pairs": "training pairs",
    "target_noise": "noise std on the targets (normalised units)",
    "lead_time": "lead time of the target (MTU)",
}


def plot_scaling(table):
    """Plot the nRMSE against each study's variable, one panel per study.

    Parameters
    ----------
    table : pandas.DataFrame or dict of ndarray
        The table returned by :func:`scaling_studies`.

    Returns
    -------
    figure : matplotlib.figure.Figure
        The figure drawn on.
    """
    import matplotlib.pyplot as plt

    columns = table_columns(table)
    studies = list(dict.fromkeys(columns["study"]))
    figure, axes = plt.subplots(
        1, len(studies), figsize=(4.5 * len(studies), 4), squeeze=False
    )
    for ax, study in zip(axes[0], studies, strict=True):
        mine = columns["study"] == study
        for model in dict.fromkeys(columns["model"][mine]):
            rows = mine & (columns["model"] == model)
            values = np.unique(columns["value"][rows])
            medians = [
                np.median(columns["nrmse"][rows & (columns["value"] == v)])
                for v in values
            ]
            style = (
                {"color": "black", "linestyle": ":"} if model == "persistence" else {}
            )
            ax.plot(values, medians, marker="o", label=model, **style)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(_LABELS[study])
        ax.set_ylabel("nRMSE of the increment")
        ax.grid(True, alpha=0.3)
    axes[0, 0].legend(fontsize="small")
    figure.tight_layout()
    return figure
