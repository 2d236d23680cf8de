"""Surrogate comparison: diffusion features against baselines (the paper's Table 3)."""

import contextlib
import copy
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from joblib import Parallel, delayed
from sklearn.base import clone
from sklearn.frozen import FrozenEstimator
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import PolynomialFeatures
from threadpoolctl import threadpool_limits

from .._base import progress
from ..datasets import make_lorenz63
from ..featurizers import DiffusionFeaturizer, RFFFeaturizer
from ..linear_model import StreamingRidge, StreamingRidgeCV
from ..metrics import hellinger_distance, nrmse, valid_prediction_time
from ..neural import DenseRegressor, ResidualRegressor, ShallowHeadRegressor
from ..surrogate import SurrogateForecaster
from . import _common as common

# Lead times of the paper's Table 3, in model time units.
TABLE_LEAD_TIMES = (0.1, 1.0, 2.0, 5.0, 10.0)
ALL_TIMES = (0, 50, 100, 200, 400, 600)


@dataclass(frozen=True)
class SurrogatePreset:
    """Sizes and recipes of :func:`surrogate_comparison`; the defaults are "quick".

    ``network`` (from scratch) and ``head`` (shallow heads) are parameters of
    :class:`~skdiffusion.DenseRegressor`, ``featurizer`` of
    :class:`~skdiffusion.DiffusionFeaturizer`. ``n_starts`` rollouts of
    ``n_leads`` steps of 0.1 MTU are scored; ``n_climate`` of them go on for
    ``climate_leads`` steps: the forecast climate.
    """

    n_seeds: int = 2
    n_train_trajectories: int = 8
    n_train_steps: int = 1_250
    n_test_trajectories: int = 4
    n_test_steps: int = 5_000
    n_starts: int = 64
    n_leads: int = 100
    n_climate: int = 32
    climate_leads: int = 300
    ridge_alpha: float = 1e-4
    chunk_size: int = 4_096
    width: int = 256
    # 20 epochs of the 9,920 training pairs in batches of 256 (39 steps each),
    # cosine decay from 3e-3: the best of benchmarks/bench_neural.py's grid
    # for both networks; the heads take a smaller step on their 512 or 1536
    # inputs (measured)
    network: dict = common.params(
        learning_rate=3e-3, lr_schedule="cosine", batch_size=256, max_iter=20 * 39
    )
    head: dict = common.params(learning_rate=3e-4, batch_size=256, max_iter=20 * 39)
    featurizer: dict = common.params(max_iter=200, batch_size=1024)
    # shallow heads compute their features batch by batch
    # (ShallowHeadRegressor), not as a matrix: the paper's sizes need it
    stream_heads: bool = False

    def __post_init__(self):
        if self.n_climate > self.n_starts or 10 * self.n_leads >= self.n_test_steps:
            raise ValueError(
                "Need n_climate <= n_starts and 10 * n_leads < n_test_steps."
            )


# 100 epochs of 1.6e7 pairs in batches of 16384 (977 steps each)
_PAPER_NETWORK = {"learning_rate": 5e-5, "batch_size": 16_384, "max_iter": 97_700}
PRESETS = {
    "quick": SurrogatePreset(),
    # The paper's data and recipes, for a GPU; every head streams its
    # features, so host memory stays near 5 GB (see the plan printed by
    # python -m skdiffusion.experiments --preset paper --dry-run).
    "paper": SurrogatePreset(
        n_seeds=10,
        n_train_trajectories=16,
        n_train_steps=1_000_000,
        n_test_trajectories=16,
        n_test_steps=100_000,
        n_starts=16_384,
        n_climate=1_024,
        climate_leads=1_000,
        chunk_size=65_536,
        network=_PAPER_NETWORK,
        head=_PAPER_NETWORK,
        featurizer=common.PAPER_FEATURIZER,
        stream_heads=True,
    ),
}


# Penalties a held-out ridge tries: StreamingRidgeCV's default grid
RIDGE_ALPHAS = StreamingRidgeCV().alphas


def _ridge(p, transformer, seed=None, held_out=False):
    """The paper's fixed penalty, or one chosen on held-out trajectories.

    Held out: a quarter of the training trajectories (of the rows when the
    fit gets no ``groups``).
    """
    chunks = {"chunk_size": p.chunk_size, "standardize": True}
    if held_out:
        return StreamingRidgeCV(
            RIDGE_ALPHAS, transformer=transformer, validation_fraction=0.25,
            random_state=seed, **chunks,
        )
    return StreamingRidge(p.ridge_alpha, transformer=transformer, **chunks)


def _network(regressor, recipe, seed):
    # exactly max_iter steps: no early stop
    return regressor.set_params(**recipe, random_state=seed, n_iter_no_change=None)


def _at(featurizer, times):
    # one fitted featurizer serves every subset of pseudo-times
    return FrozenEstimator(copy.deepcopy(featurizer).set_params(feature_times=times))


def _rff(n_components, held_out=False):
    return lambda p, s, f: _ridge(
        p, RFFFeaturizer(n_components, random_state=s), s, held_out
    )


def _poly(degree, held_out=False):
    return lambda p, s, f: _ridge(
        p, PolynomialFeatures(degree, include_bias=False), s, held_out
    )


def _dense(n_layers):
    return lambda p, s, f: _network(DenseRegressor((p.width,) * n_layers), p.network, s)


def _residual(n_blocks):
    return lambda p, s, f: _network(
        ResidualRegressor(p.width, n_blocks=n_blocks), p.network, s
    )


def _ridge_on(kind, times, held_out=False):
    return lambda p, s, f: _ridge(p, _at(f[kind], times), s, held_out)


def _shallow_on(kind, times):
    def shallow(p, s, f):
        if p.stream_heads:  # the same model, its features never materialised
            head = ShallowHeadRegressor(
                FrozenEstimator(f[kind]), feature_times=times,
                hidden_layer_sizes=(p.width,),
            )
            return _network(head, p.head, s)
        return make_pipeline(
            _at(f[kind], times), _network(DenseRegressor((p.width,)), p.head, s)
        )

    return shallow


# label -> (kind, factory(preset, seed, featurizers) -> unfitted regressor of
# the increment). ``featurizers`` holds the seed's fitted DiffusionFeaturizer
# ("transfer") and the same network untrained ("untrained"). The kind groups
# models in plots and in the claim that transfer_vs_scratch tests. Every
# ridge model comes twice: "+ridge" with the paper's penalty, "+ridgeCV"
# with the penalty of held-out trajectories.
MODELS = {
    "RFF(1536)+ridge": ("baseline", _rff(1536)),
    "RFF(1536)+ridgeCV": ("baseline", _rff(1536, held_out=True)),
    "RFF(256)+ridge": ("baseline", _rff(256)),
    "RFF(256)+ridgeCV": ("baseline", _rff(256, held_out=True)),
    "poly(4)+ridge": ("baseline", _poly(4)),
    "poly(4)+ridgeCV": ("baseline", _poly(4, held_out=True)),
    "dense(1x256)": ("scratch", _dense(1)),
    "dense(2x256)": ("scratch", _dense(2)),
    "dense(3x256)": ("scratch", _dense(3)),
    "residual(3 blocks)": ("scratch", _residual(3)),
    "transfer(6 t)+ridge": ("transfer", _ridge_on("transfer", ALL_TIMES)),
    "transfer(6 t)+ridgeCV": ("transfer", _ridge_on("transfer", ALL_TIMES, True)),
    "transfer(t=400)+ridge": ("transfer", _ridge_on("transfer", (400,))),
    "transfer(t=400)+ridgeCV": ("transfer", _ridge_on("transfer", (400,), True)),
    "transfer(t=0,400)+shallow": ("transfer", _shallow_on("transfer", (0, 400))),
    "untrained(6 t)+ridge": ("untrained", _ridge_on("untrained", ALL_TIMES)),
    "untrained(6 t)+ridgeCV": ("untrained", _ridge_on("untrained", ALL_TIMES, True)),
    "untrained(t=0,400)+shallow": ("untrained", _shallow_on("untrained", (0, 400))),
}


def fit_featurizers(X, preset, seed):
    """The seed's featurizer fitted on ``X``, and the same network untrained."""
    trained = DiffusionFeaturizer(random_state=seed, **preset.featurizer)
    untrained = clone(trained).set_params(max_iter=0)
    return {"transfer": trained.fit(X), "untrained": untrained.fit(X)}


def surrogate_comparison(
    preset="quick", *, models=None, output_dir=None, random_state=0, n_jobs=None,
    verbose=False,
):
    """Compare surrogate models of Lorenz 63 over seeds (the paper's Table 3).

    Every model learns the increment over 0.1 MTU from the same pairs and is
    rolled out from held-out states. Per seed, one diffusion featurizer is
    trained and shared, frozen, by the transfer models (each reads its own
    pseudo-times); the same network untrained serves the untrained models.

    Parameters
    ----------
    preset : {"quick", "paper"} or SurrogatePreset, default="quick"
        ``"quick"``: minutes on two CPU cores (about 10^4 training pairs);
        ``"paper"``: the paper's data (1.6e7 states) and recipes, for a GPU.
    models : list of str or None, default=None
        Labels from :data:`MODELS`; None runs all.
    output_dir : str, path or None, default=None
        If given, write ``surrogate_comparison.csv`` and ``.png`` and
        ``surrogate_summary.csv`` (:func:`summarize_surrogates`).
    random_state : int, default=0
        Seeds the data and the models.
    n_jobs : int or None, default=None
        Processes that fit and score the (seed, model) pairs at once
        (joblib; ``None`` is one, ``-1`` all cores), each on one thread when
        there are several. The table is the same for any ``n_jobs`` up to
        the last bits of float arithmetic on one thread or two, which the
        long climate rollouts (Hellinger distances) can amplify.
    verbose : bool, default=False
        Report progress.

    Returns
    -------
    table : pandas.DataFrame
        One row per model, seed and lead time (MTU): ``model``, ``kind``,
        ``seed``, ``lead_time``, ``nrmse`` (normalised; NaN once a rollout
        blew up), ``vpt`` (valid prediction time in MTU, median over the
        rollouts: the first lead at which a rollout's nRMSE exceeds 0.5),
        ``hellinger`` (of the forecast climate), ``blown_up``
        (fraction of rollouts), ``fit_time`` and ``pretrain_time`` (s, the
        seed's featurizers), ``alpha`` (the ridge penalty: the paper's for
        "+ridge", the held-out choice for "+ridgeCV", NaN for networks).
        The ``"truth"`` rows hold the Hellinger distance of true states
        sampled like a forecast climate.
    """
    preset = common.preset_of(preset, PRESETS)
    names = list(MODELS) if models is None else list(models)
    common.check_names("model(s)", names, MODELS)
    # one stream: the first model seeds do not depend on n_seeds
    data_seed, climate_seed, *seeds = common.seeds_from(
        random_state, 2 + preset.n_seeds
    )
    train, test = common.lorenz63_data(preset, random_state=data_seed)
    floor = climate_floor(test, preset, random_state=climate_seed)
    truth = {
        "curve": np.full(preset.n_leads + 1, np.nan), "vpt": np.nan, "hellinger": floor
    }
    parts = [_rows("truth", "truth", -1, **truth, blown_up=0.0, fit_time=0.0)]
    pretrained = any(MODELS[name][0] in ("transfer", "untrained") for name in names)
    bar = progress(
        len(seeds) * len(names), desc="surrogates", verbose=verbose, unit="model",
        every=1,
    )
    # The models are small: one process per core beats threads inside one
    # (make demo on 2 idle cores: see the README's timing).
    with bar, Parallel(n_jobs=n_jobs, return_as="generator") as parallel:
        featurizers = dict(zip(seeds, parallel(
            delayed(_pretrain)(train.X, preset, seed, pretrained) for seed in seeds
        ), strict=True))
        tasks = (
            delayed(_fit_and_score)(name, seed, featurizers[seed], train, test, preset)
            for seed in seeds for name in names
        )
        for rows in parallel(tasks):
            parts.append(rows)
            bar.set_postfix_str(f"{rows['model'][0]} nRMSE@0.1 {rows['nrmse'][1]:.2e}")
            bar.update()
    table = pd.concat(parts, ignore_index=True)
    common.save(table, output_dir, "surrogate_comparison")
    common.save(summarize_surrogates(table), output_dir, "surrogate_summary")
    if output_dir is not None:
        from matplotlib.figure import Figure  # no pyplot: no display needed

        figure = plot_surrogate_comparison(table, ax=Figure(figsize=(8, 5)).subplots())
        path = Path(output_dir) / "surrogate_comparison.png"
        figure.savefig(path, dpi=120, bbox_inches="tight")
    return table


def _pretrain(X, preset, seed, pretrained):
    """The seed's featurizers (none if no model needs them) and their fit time."""
    start = time.perf_counter()
    featurizers = fit_featurizers(X, preset, seed) if pretrained else {}
    return featurizers, time.perf_counter() - start


def _fit_and_score(name, seed, pretrained, train, test, preset):
    """One model of one seed fitted and rolled out: its rows of the table."""
    featurizers, pretrain_time = pretrained
    kind, factory = MODELS[name]
    forecaster = SurrogateForecaster(factory(preset, seed, featurizers))
    # held-out ridges hold out whole training trajectories
    held_out = isinstance(forecaster.regressor, StreamingRidgeCV)
    with warnings.catch_warnings():
        # a rollout that blows up is counted in the table: no warning
        warnings.simplefilter("ignore", RuntimeWarning)
        scores = common.fit_and_score(
            forecaster, train.X, train.X + train.y, rollout_skill, test, preset,
            fit_params={"groups": train.groups} if held_out else {},
        )
    if isinstance(forecaster.regressor, StreamingRidge | StreamingRidgeCV):
        scores["alpha"] = getattr(forecaster.regressor_, "alpha_", preset.ridge_alpha)
    if kind in ("transfer", "untrained"):
        scores["pretrain_time"] = pretrain_time
    return _rows(name, kind, seed, **scores)


def _rows(model, kind, seed, curve, pretrain_time=np.nan, alpha=np.nan, **scores):
    """One table row per lead time (0.1 MTU apart) of a model's nRMSE curve."""
    lead_time = np.round(0.1 * np.arange(len(curve)), 6)
    ids = {"model": model, "kind": kind, "seed": seed, "lead_time": lead_time}
    return pd.DataFrame(
        {**ids, "nrmse": curve, **scores, "pretrain_time": pretrain_time,
         "alpha": alpha}
    )


def rollout_skill(forecaster, test, preset):
    """nRMSE ``curve`` by lead, climate ``hellinger`` and ``blown_up`` fraction.

    ``n_starts`` rollouts from states spread over ``test.states``, of which
    ``n_climate`` go on for ``climate_leads`` steps: the forecast climate.
    """
    # One thread: a forecast step is a tiny batch (64 states), on which a
    # second thread costs more than it saves; measured on 2 busy cores, a
    # 100-step rollout of a 6-time transfer model took 2.8 CPU s (5.6 wall)
    # on one thread against 5.5 (11) on two.
    with threadpool_limits(1), _torch_threads(1):
        return _rollout_skill(forecaster, test, preset)


@contextlib.contextmanager
def _torch_threads(n):
    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _rollout_skill(forecaster, test, preset):
    n_trajectories, n_steps, _ = test.states.shape
    n_leads, lead = preset.n_leads, test.lead_steps
    per_trajectory = -(-preset.n_starts // n_trajectories)
    starts = np.linspace(0, n_steps - 1 - n_leads * lead, per_trajectory).astype(int)
    rows = np.repeat(np.arange(n_trajectories), per_trajectory)[: preset.n_starts]
    steps = np.tile(starts, n_trajectories)[: preset.n_starts, None]
    truth = test.states[rows[:, None], steps + lead * np.arange(n_leads + 1)]
    forecast = forecaster.forecast(truth[:, 0], n_leads)
    continued = np.linspace(0, preset.n_starts - 1, preset.n_climate).astype(int)
    alive = np.isfinite(forecast[continued, -1]).all(axis=1)
    climate = np.full((preset.n_climate, preset.climate_leads, 3), np.nan)
    if alive.any():
        last = forecast[continued[alive], -1]
        climate[alive] = forecaster.forecast(last, preset.climate_leads)[:, 1:]
    blown_up = ~np.isfinite(forecast).all(axis=(1, 2))
    blown_up[continued] |= ~np.isfinite(climate).all(axis=(1, 2))
    hellinger = hellinger_distance(climate.reshape(-1, 3), test.states.reshape(-1, 3))
    curve = nrmse(truth, forecast, std=1.0)
    vpt = valid_prediction_time(truth, forecast, dt=lead * test.dt, std=1.0)
    return {
        "curve": curve,
        "vpt": vpt,
        "hellinger": hellinger,
        "blown_up": blown_up.mean(),
    }


def climate_floor(test, preset, *, random_state):
    """Hellinger distance of true states sampled like the forecast climate."""
    lead = test.lead_steps
    n_steps = preset.climate_leads * lead
    truth = make_lorenz63(preset.n_climate, n_steps, random_state=random_state)
    sample = (truth.trajectories[:, lead - 1 :: lead] - truth.shift) / truth.scale
    return hellinger_distance(sample.reshape(-1, 3), test.states.reshape(-1, 3))


def _quantile(q):
    """Percentile ``q`` of a group, NaN if any of its values is NaN."""
    return lambda values: np.nan if values.isna().any() else np.percentile(values, q)


def summarize_surrogates(table, lead_times=TABLE_LEAD_TIMES):
    """Median and 5-95 % range over seeds of each model's scores.

    Returns one row per model and metric (``"nrmse@<lead>"`` for the
    ``lead_times`` in MTU that the forecasts reach, ``"vpt"``,
    ``"hellinger"``, ``"blown_up"``) with columns ``model``, ``kind``, ``metric``,
    ``median``, ``q05``, ``q95`` and ``n_seeds``; an nRMSE is NaN where a
    rollout of some seed had blown up by that lead time.
    """
    per_seed = table[table["lead_time"] == 0].drop(columns="nrmse")
    metrics = []
    for lead in lead_times:
        at = np.isclose(table["lead_time"], lead)
        if at.any():
            metrics.append(f"nrmse@{lead:g}")
            per_seed[metrics[-1]] = table.loc[at, "nrmse"].to_numpy()
    metrics += ["vpt", "hellinger", "blown_up"]
    long = per_seed.melt(["model", "kind", "seed"], metrics, var_name="metric")
    order = {model: i for i, model in enumerate(table["model"].unique())}
    long = long.sort_values("model", key=lambda m: m.map(order), kind="stable")
    groups = long.groupby(["model", "kind", "metric"], sort=False)["value"]
    summary = groups.agg(
        median=_quantile(50), q05=_quantile(5), q95=_quantile(95), n_seeds="size"
    )
    return summary.reset_index()


def _cells(row):
    """The median and the 5-95 % range of a summary row, as printed."""
    if row.kind == "truth" and row.metric != "hellinger":
        return "-", "-"
    if row.metric == "blown_up":
        return f"{100 * row.median:.0f} %", f"{100 * row.q05:.0f}-{100 * row.q95:.0f} %"
    if row.metric == "vpt":
        return f"{row.median:.2f}", f"{row.q05:.2f}-{row.q95:.2f}"
    if np.isnan(row.median):
        return "blew up", "blew up"
    return f"{row.median:.2e}", f"{row.q05:.1e}-{row.q95:.1e}"


def format_summary(summary):
    """The summary as text: models x metrics, medians then 5-95 % ranges.

    The layout of the paper's Table 3; "blew up" marks an nRMSE where a
    rollout of some seed had left the attractor by that lead time.
    """
    median, spread = zip(*(_cells(row) for row in summary.itertuples()), strict=True)
    cells = summary.assign(median=median, spread=spread)
    models, metrics = summary["model"].unique(), summary["metric"].unique()

    def wide(values):
        table = cells.pivot(index="model", columns="metric", values=values)
        table = table.loc[models, metrics].rename_axis(columns=None).reset_index()
        width = {key: max(len(key), table[key].str.len().max()) for key in table}
        left = {key: f"{{:<{width[key]}}}".format for key in table}
        return table.to_string(index=False, justify="left", formatters=left)

    n_seeds = summary["n_seeds"].max()
    return (
        f"Median over {n_seeds} seeds:\n{wide('median')}\n\n"
        f"5 %-95 % range over seeds:\n{wide('spread')}"
    )


def transfer_vs_scratch(summary, metric="nrmse@0.1"):
    """Whether each transfer model's median lies in the from-scratch seed range.

    Returns a dict: ``"scratch_range"``, the lowest q05 and highest q95 of
    ``metric`` over the from-scratch networks, and ``"transfer"``,
    ``{model: (median, within)}``.
    """
    rows = summary[summary["metric"] == metric]
    scratch = rows[rows["kind"] == "scratch"]
    low, high = float(scratch["q05"].min()), float(scratch["q95"].max())
    transfer = rows[rows["kind"] == "transfer"]
    medians = zip(transfer["model"], transfer["median"], strict=True)
    within = {model: (median, low <= median <= high) for model, median in medians}
    return {"metric": metric, "scratch_range": (low, high), "transfer": within}


_COLORS = {"baseline": "gray", "scratch": "C0", "transfer": "C3", "untrained": "olive"}


def plot_surrogate_comparison(table, ax=None):
    """Plot nRMSE against lead time, median and 5-95 % over seeds; the figure."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(8, 5))
    forecasts = table[(table["kind"] != "truth") & (table["lead_time"] > 0)]
    drawn = {}
    for (model, kind), rows in forecasts.groupby(["model", "kind"], sort=False):
        curves = rows.pivot(index="seed", columns="lead_time", values="nrmse")
        low, median, high = np.percentile(curves.to_numpy(), [5, 50, 95], axis=0)
        style = ["-", "--", ":", "-."][drawn.setdefault(kind, 0) % 4]
        drawn[kind] += 1
        leads, color = curves.columns, _COLORS[kind]
        ax.plot(leads, median, color=color, linestyle=style, label=model)
        ax.fill_between(leads, low, high, color=color, alpha=0.15, linewidth=0)
    ax.set(xscale="log", yscale="log", xlabel="lead time (MTU)", ylabel="nRMSE")
    ax.set_title("Lorenz 63 surrogates: median and 5-95 % over seeds")
    ax.legend(fontsize="small", bbox_to_anchor=(1.02, 1), loc="upper left")
    ax.grid(True, which="major", alpha=0.3)
    return ax.figure
