"""Spatially extended systems: surrogates of Lorenz 96 on a ring of sites."""

import functools
import time
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.frozen import FrozenEstimator
from sklearn.pipeline import make_pipeline

from .._base import progress
from ..datasets import make_lorenz96
from ..featurizers import DiffusionFeaturizer, RFFFeaturizer
from ..linear_model import StreamingRidgeCV
from ..metrics import LYAPUNOV_EXPONENTS, nrmse, valid_prediction_time
from ..neural import ConvRegressor, FineTunedRegressor
from ..spatial import PeriodicPatches, SiteWiseRegressor
from ..surrogate import SurrogateForecaster
from . import _common as common

# Lead times (MTU) of the printed table.
TABLE_LEAD_TIMES = (0.1, 0.5, 1.0, 2.0)


@dataclass(frozen=True)
class SpatialPreset:
    """Sizes and recipes of :func:`spatial_surrogate_comparison`; defaults are "quick".

    Lorenz 96 on ``n_sites`` sites, RK4 with step ``dt`` (MTU); a surrogate
    step is ``lead_steps * dt`` (0.1 MTU). ``featurizer`` holds parameters of
    :class:`~skdiffusion.DiffusionFeaturizer` (``architecture="conv"``),
    ``network`` the training parameters shared by
    :class:`~skdiffusion.ConvRegressor` and
    :class:`~skdiffusion.FineTunedRegressor` (the same number of optimiser
    steps as the featurizer: the same budget), ``wavelengths`` the random
    Fourier features' wavelengths tried on held-out rows by the local RFF.
    The ridges on frozen conv features read the features of each site's
    ``head_radius`` neighbours to each side and are fitted on every
    ``head_stride``-th training state (those neighbourhoods are large:
    ``2 * head_radius + 1`` times the features). ``n_starts`` rollouts of
    ``n_leads`` steps are scored.
    """

    n_seeds: int = 3
    n_sites: int = 40
    dt: float = 0.05
    lead_steps: int = 2
    n_train_trajectories: int = 8
    n_train_steps: int = 2_500
    n_test_trajectories: int = 4
    n_test_steps: int = 1_000
    n_starts: int = 64
    n_leads: int = 40
    radius: int = 4
    n_components: int = 256
    wavelengths: tuple = (10.0, 30.0, 100.0)
    head_radius: int = 2
    # every 8th state: the heads' 3,200 features a site would take 10 GB on
    # all of them, and all of them scored the same (docs, spatial)
    head_stride: int = 8
    featurizer: dict = common.params(
        n_hidden=32, kernel_size=3, n_blocks=4, parameterization="noise",
        feature_times=(0, 100, 400, 700, 900), feature_blocks="all", max_iter=300,
        batch_size=256, learning_rate=3e-3, lr_schedule="cosine", dtype="float32",
    )
    network: dict = common.params(
        max_iter=300, batch_size=256, learning_rate=3e-3, lr_schedule="cosine",
    )

    def __post_init__(self):
        if self.lead_steps * self.n_leads >= self.n_test_steps:
            raise ValueError("Need lead_steps * n_leads < n_test_steps.")


PRESETS = {
    "quick": SpatialPreset(),
    # about 10^5 training states and ten times the optimiser steps, for a GPU
    "gpu": SpatialPreset(
        n_train_trajectories=32,
        n_train_steps=4_000,
        n_starts=256,
        n_leads=60,
        n_components=1536,
        # 6,400 features per site in the neighbourhoods: 8,000 states take 8 GB
        head_stride=16,
        featurizer={**SpatialPreset().featurizer, "n_hidden": 64, "max_iter": 3_000,
                    "batch_size": 1_024},
        network={**SpatialPreset().network, "max_iter": 3_000, "batch_size": 1_024},
    ),
}


def lorenz96_data(preset, *, random_state, n_sites=None):
    """Training, validation and test Bunches of Lorenz 96 (``make_lorenz96``).

    Each has ``states``: the normalised trajectories one surrogate step apart.
    The validation Bunch (one trajectory, as long as a test trajectory or a
    quarter of the training ones) chooses the local RFF's wavelength.
    """
    seeds = common.seeds_from(random_state, 3)
    n_dim = preset.n_sites if n_sites is None else n_sites
    sizes = [
        (preset.n_train_trajectories, preset.n_train_steps),
        (1, max(preset.n_test_steps, preset.n_train_steps // 4)),
        (preset.n_test_trajectories, preset.n_test_steps),
    ]
    bunches = []
    for (n_trajectories, n_steps), seed in zip(sizes, seeds, strict=True):
        data = make_lorenz96(
            n_trajectories, n_steps, n_dim=n_dim, dt=preset.dt,
            lead_steps=preset.lead_steps, random_state=seed, dtype=np.float32,
        )
        states = (data.trajectories - data.shift) / data.scale
        data.states = states[:, :: preset.lead_steps].astype(np.float32)
        bunches.append(data)
    return tuple(bunches)


class Persistence(RegressorMixin, BaseEstimator):
    """The zero-increment surrogate: tomorrow is today (any ring size)."""

    def fit(self, X, y):
        self.fitted_ = True
        return self

    def predict(self, X):
        return np.zeros_like(np.asarray(X))


def local_rff(preset, seed, valid, wavelength=None, scale=1):
    """Random Fourier features of each site's patch, one ridge for all sites.

    ``scale * preset.n_components`` features. Without ``wavelength``, the one
    of ``preset.wavelengths`` with the smallest one-step error on ``valid``
    is fitted (on a quarter of the training rows while choosing).
    """
    def build(length):
        rff = RFFFeaturizer(scale * preset.n_components, wavelength=length,
                            random_state=seed)
        ridge = StreamingRidgeCV(transformer=rff, standardize=True, random_state=seed)
        return make_pipeline(PeriodicPatches(preset.radius), SiteWiseRegressor(ridge))

    if wavelength is not None:
        return build(wavelength)
    return _ChooseOnHeldOut(build, preset.wavelengths, valid)


class _ChooseOnHeldOut(RegressorMixin, BaseEstimator):
    """Fit ``build(value)`` for each value on part of the rows, keep the best.

    The best value (smallest one-step error on ``valid``) is refitted on all
    rows; ``chosen_`` holds it.
    """

    def __init__(self, build, values, valid):
        self.build, self.values, self.valid = build, values, valid

    def fit(self, X, y):
        rows = slice(None, max(len(X) // 4, 1))
        errors = []
        for value in self.values:
            model = self.build(value).fit(X[rows], y[rows])
            errors.append(nrmse(self.valid.y, model.predict(self.valid.X), std=1.0))
        self.chosen_ = self.values[int(np.argmin(errors))]
        self.model_ = self.build(self.chosen_).fit(X, y)
        return self

    def predict(self, X):
        return self.model_.predict(X)


def conv_featurizer(preset, seed, **overrides):
    """The convolutional :class:`~skdiffusion.DiffusionFeaturizer` of ``preset``."""
    params = {**preset.featurizer, **overrides}
    return DiffusionFeaturizer(architecture="conv", random_state=seed, **params)


def features_ridge(featurizer, seed, radius=0, stride=1):
    """A fitted featurizer, frozen, and one ridge shared by all sites.

    The ridge reads the features of each site and of its ``radius``
    neighbours to each side, and is fitted on every ``stride``-th state.
    """
    n_site_features = len(featurizer.get_feature_names_out()) // (
        featurizer.n_features_in_
    )
    ridge = StreamingRidgeCV(standardize=True, random_state=seed)
    head = make_pipeline(
        FrozenEstimator(featurizer),
        PeriodicPatches(radius, n_site_features=n_site_features),
        SiteWiseRegressor(ridge),
    )
    return head if stride == 1 else _EveryKth(head, stride)


class _EveryKth(RegressorMixin, BaseEstimator):
    """``estimator`` fitted on every ``k``-th row only (bounds its memory)."""

    def __init__(self, estimator, k):
        self.estimator, self.k = estimator, k

    def fit(self, X, y):
        self.estimator_ = clone(self.estimator).fit(X[:: self.k], y[:: self.k])
        return self

    def predict(self, X):
        return self.estimator_.predict(X)


def _network(regressor, preset, seed):
    # exactly max_iter steps: no early stop
    return regressor.set_params(
        **preset.network, random_state=seed, n_iter_no_change=None
    )


def conv_scratch(preset, seed):
    """:class:`~skdiffusion.ConvRegressor` with the featurizer's trunk, from scratch."""
    trunk = {k: preset.featurizer[k] for k in ("n_hidden", "kernel_size", "n_blocks")}
    return _network(ConvRegressor(**trunk), preset, seed)


def fine_tuned(featurizer, preset, seed):
    """A fitted featurizer's trunk at pseudo-time 0, all of it trained on ``y``."""
    return _network(FineTunedRegressor(featurizer, time=0), preset, seed)


# label -> factory(preset, seed, featurizers, valid) -> unfitted regressor of
# the increment; ``featurizers`` holds the seed's fitted conv featurizer
# ("trained") and the same network untrained ("untrained").
MODELS = {
    "persistence": lambda p, s, f, v: Persistence(),
    "local RFF + ridge": lambda p, s, f, v: local_rff(p, s, v),
    # four times the random features: a rival of the frozen heads' size
    "local RFF x4 + ridge": lambda p, s, f, v: local_rff(p, s, v, scale=4),
    "untrained conv + ridge": lambda p, s, f, v: _head(f["untrained"], p, s),
    "conv features + ridge": lambda p, s, f, v: _head(f["trained"], p, s),
    "fine-tuned conv": lambda p, s, f, v: fine_tuned(f["trained"], p, s),
    "conv from scratch": lambda p, s, f, v: conv_scratch(p, s),
}


def _head(featurizer, preset, seed):
    return features_ridge(featurizer, seed, preset.head_radius, preset.head_stride)


def fit_featurizers(X, preset, seed):
    """The seed's conv featurizer fitted on ``X`` and the same network untrained.

    Returns the two and the CPU seconds of the trained one's fit.
    """
    start = time.process_time()
    trained = conv_featurizer(preset, seed).fit(X)
    cpu = time.process_time() - start
    untrained = conv_featurizer(preset, seed, max_iter=0).fit(X)
    return {"trained": trained, "untrained": untrained}, cpu


def rollouts(test, preset, n_leads=None):
    """True rollouts from ``n_starts`` states spread over ``test.states``.

    Of shape (n_starts, n_leads + 1, n_sites), one surrogate step apart.
    """
    n_leads = preset.n_leads if n_leads is None else n_leads
    n_trajectories, n_steps, _ = test.states.shape
    per_trajectory = -(-preset.n_starts // n_trajectories)
    starts = np.linspace(0, n_steps - 1 - n_leads, per_trajectory).astype(int)
    rows = np.repeat(np.arange(n_trajectories), per_trajectory)[: preset.n_starts]
    steps = np.tile(starts, n_trajectories)[: preset.n_starts, None]
    return test.states[rows[:, None], steps + np.arange(n_leads + 1)]


def skill(regressor, truth, step):
    """One-step ``nrmse``, the nRMSE ``curve`` by lead and the ``vpt`` (MTU).

    ``regressor`` predicts the increment of normalised states; it is rolled
    out from ``truth[:, 0]`` (normalised, ``step`` MTU between leads).
    """
    with warnings.catch_warnings():
        # a rollout that blows up is scored as such: no warning
        warnings.simplefilter("ignore", RuntimeWarning)
        forecaster = SurrogateForecaster(FrozenEstimator(regressor), ring=True)
        # the frozen regressor is not refitted: this only sets the
        # forecaster's blow-up scale, from the true states' climate
        n_sites = truth.shape[2]
        states = truth.reshape(-1, n_sites)
        forecaster.fit(states[:-1], states[1:])
        forecast = forecaster.forecast(truth[:, 0], truth.shape[1] - 1)
    curve = nrmse(truth, forecast, std=1.0)
    one_step = nrmse(truth[:, 1], truth[:, 0] + regressor.predict(truth[:, 0]), std=1.0)
    vpt = valid_prediction_time(truth, forecast, dt=step, std=1.0)
    return {"one_step": float(one_step), "curve": curve, "vpt": vpt}


def fit_timed(model, X, y):
    """Fit ``model``; return it and the CPU seconds (all threads) it took."""
    start = time.process_time()
    with warnings.catch_warnings():
        # fixed budgets: stopping before convergence is intended
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X, y)
    return model, time.process_time() - start


def spatial_surrogate_comparison(
    preset="quick", *, models=None, output_dir=None, random_state=0, n_jobs=None,
    verbose=False,
):
    """Compare surrogates of Lorenz 96 on a ring (local, convolutional, diffusion).

    Every model learns the increment of the normalised state over one
    surrogate step (0.1 MTU) from the same pairs, and is rolled out from
    held-out states. Per seed, one convolutional diffusion featurizer is
    trained on the training states and shared, frozen, by the models that
    read its features; the same network untrained is the control.

    Parameters
    ----------
    preset : {"quick", "gpu"} or SpatialPreset, default="quick"
        ``"quick"``: 2 x 10^4 training states, minutes on two CPU cores;
        ``"gpu"``: about 10^5 states and ten times the training, for a GPU.
    models : list of str or None, default=None
        Labels from :data:`MODELS`; None runs all.
    output_dir : str, path or None, default=None
        If given, write ``spatial_comparison.csv`` and ``spatial_summary.csv``.
    random_state : int, default=0
        Seeds the data and the models.
    n_jobs : int or None, default=None
        Processes that fit and score the (seed, model) pairs at once
        (joblib; ``None`` is one, ``-1`` all cores), each on one thread when
        there are several. The table is the same for any ``n_jobs`` up to
        the last bits of float arithmetic on one thread or two, which long
        rollouts can amplify.
    verbose : bool, default=False
        Report progress.

    Returns
    -------
    table : pandas.DataFrame
        One row per model, seed and lead time (MTU): ``model``, ``seed``,
        ``lead_time``, ``nrmse`` (normalised by the climatological std; NaN
        once a rollout blew up), ``one_step`` (nRMSE of one step), ``vpt``
        (valid prediction time, MTU, median over rollouts), ``fit_cpu`` (CPU
        seconds of the fit, the featurizer's included where it is used).
    """
    preset = common.preset_of(preset, PRESETS)
    names = list(MODELS) if models is None else list(models)
    common.check_names("model(s)", names, MODELS)
    data_seed, *seeds = common.seeds_from(random_state, 1 + preset.n_seeds)
    train, valid, test = lorenz96_data(preset, random_state=data_seed)
    score = functools.partial(
        _fit_and_score, train=train, valid=valid, truth=rollouts(test, preset),
        preset=preset,
    )
    bar = progress(len(seeds) * len(names), desc="spatial surrogates",
                   verbose=verbose, unit="model", every=1)
    results = {}
    # Two rounds, so that no process waits: the featurizers and the models
    # without them, then the models that read the featurizers.
    with bar, Parallel(n_jobs=n_jobs, return_as="generator") as parallel:
        pretrain = [seed for seed in seeds if USES_FEATURIZER & set(names)]
        first = [delayed(fit_featurizers)(train.X, preset, seed) for seed in pretrain]
        first += [delayed(score)(name, seed) for seed in seeds for name in names
                  if name not in USES_FEATURIZER]
        outputs = list(_collect(parallel(first), results, bar))
        featurizers = dict(zip(pretrain, outputs, strict=True))
        second = [delayed(score)(name, seed, *featurizers[seed])
                  for seed in seeds for name in names if name in USES_FEATURIZER]
        list(_collect(parallel(second), results, bar))
    table = pd.concat([results[seed, name] for seed in seeds for name in names],
                      ignore_index=True)
    common.save(table, output_dir, "spatial_comparison")
    common.save(summarize_spatial(table), output_dir, "spatial_summary")
    return table


# The models that read the seed's conv featurizer, trained or untrained.
USES_FEATURIZER = {"untrained conv + ridge", "conv features + ridge", "fine-tuned conv"}


def _collect(outputs, results, bar):
    """Store the models' rows in ``results``; yield what else comes out."""
    for output in outputs:
        if not isinstance(output, pd.DataFrame):
            yield output
            continue
        name, seed = output["model"][0], output["seed"][0]
        results[seed, name] = output
        bar.set_postfix_str(f"{name} {output['one_step'][0]:.3f}")
        bar.update()


def _fit_and_score(name, seed, featurizers=None, pretrain_cpu=0.0, *, train, valid,
                   truth, preset):
    """One model of one seed fitted and rolled out: its rows of the table."""
    model = MODELS[name](preset, seed, featurizers, valid)
    model, cpu = fit_timed(model, train.X, train.y)
    if name in ("conv features + ridge", "fine-tuned conv"):
        cpu += pretrain_cpu
    step = preset.dt * preset.lead_steps
    return _rows(name, seed, fit_cpu=cpu, step=step, **skill(model, truth, step))


def _rows(model, seed, curve, step, **scores):
    """One table row per lead time of a model's nRMSE curve."""
    lead_time = np.round(step * np.arange(len(curve)), 6)
    ids = {"model": model, "seed": seed, "lead_time": lead_time}
    return pd.DataFrame({**ids, "nrmse": curve, **scores})


def summarize_spatial(table, lead_times=TABLE_LEAD_TIMES):
    """Median over seeds per model: one-step nRMSE, nRMSE at leads, VPT, CPU s.

    The VPT is given in MTU and in Lyapunov times (Lorenz 96, F = 8).
    """
    order = list(dict.fromkeys(table["model"]))
    at = table[np.isin(table["lead_time"], np.round(lead_times, 6))]
    curves = at.pivot_table(index="model", columns="lead_time", values="nrmse",
                            aggfunc="median", dropna=False)
    curves.columns = [f"nrmse@{t:g}" for t in curves.columns]
    per_seed = table.groupby(["model", "seed"])[["one_step", "vpt", "fit_cpu"]].first()
    medians = per_seed.groupby("model").median()
    summary = medians.join(curves).reindex(order)
    summary.insert(2, "vpt_lyapunov", summary["vpt"] * LYAPUNOV_EXPONENTS["lorenz96"])
    return summary


def format_summary(summary):
    """The summary as a fixed-width text table."""
    return summary.to_string(float_format=lambda v: f"{v:.3g}")
