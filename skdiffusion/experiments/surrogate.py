"""Surrogate comparison: diffusion features against baselines (the paper's Table 3)."""

import time
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.frozen import FrozenEstimator
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import (
    FunctionTransformer,
    PolynomialFeatures,
)

from ._common import (
    DT,
    LEAD_STEPS,
    PAPER_FEATURIZER,
    Progress,
    climate_floor,
    forecast_skill,
    format_table,
    lorenz63_data,
    make_table,
    percentile_summary,
    resolve_preset,
    save_outputs,
    seeds_from,
    table_columns,
)

# Lead times of the paper's Table 3, in model time units.
TABLE_LEAD_TIMES = (0.1, 1.0, 2.0, 5.0, 10.0)

ALL_TIMES = (0, 50, 100, 200, 400, 600)

# name -> (kind, constructor key, options). The kind groups models in plots
# and in the claim the comparison tests (transfer vs from scratch).
MODELS = {
    "RFF(1536)+ridge": ("baseline", "rff", {"n_components": 1536}),
    "RFF(256)+ridge": ("baseline", "rff", {"n_components": 256}),
    "poly(4)+ridge": ("baseline", "poly", {"degree": 4}),
    "dense(1x256)": ("scratch", "dense", {"n_layers": 1}),
    "dense(2x256)": ("scratch", "dense", {"n_layers": 2}),
    "dense(3x256)": ("scratch", "dense", {"n_layers": 3}),
    "residual(3 blocks)": ("scratch", "residual", {"n_blocks": 3}),
    "transfer(6 t)+ridge": ("transfer", "ridge", {"times": ALL_TIMES}),
    "transfer(t=400)+ridge": ("transfer", "ridge", {"times": (400,)}),
    "transfer(t=0,400)+shallow": ("transfer", "shallow", {"times": (0, 400)}),
    "untrained(6 t)+ridge": ("untrained", "ridge", {"times": ALL_TIMES}),
    "untrained(t=0,400)+shallow": ("untrained", "shallow", {"times": (0, 400)}),
}

PRESETS = {
    # Minutes on two CPU cores: the README's main job.
    "quick": {
        "n_seeds": 3,
        "n_train_trajectories": 8,
        "n_train_steps": 1_250,
        "n_test_trajectories": 4,
        "n_test_steps": 5_000,
        "n_starts": 128,
        "n_leads": 100,
        "n_climate": 32,
        "climate_leads": 300,
        "ridge_alpha": 1e-4,
        "chunk_size": 4_096,
        # compute each featurizer's features of the training states once
        # per seed and fit the heads on them (they fit in memory here)
        "share_features": True,
        "width": 256,
        "network": {"learning_rate": 1e-3, "batch_size": 256, "max_iter": 20},
        # a smaller step for 512 or 1536 standardised inputs (measured better)
        "head": {"learning_rate": 3e-4, "batch_size": 256, "max_iter": 20},
        "featurizer": {"max_iter": 200, "batch_size": 1024},
    },
    # The paper's data and training sizes, for a GPU (about 100 GB of host
    # memory for the diffusion features of 1.6e7 states).
    "paper": {
        "n_seeds": 10,
        "n_train_trajectories": 16,
        "n_train_steps": 1_000_000,
        "n_test_trajectories": 16,
        "n_test_steps": 100_000,
        "n_starts": 16_384,
        "n_leads": 100,
        "n_climate": 1_024,
        "climate_leads": 1_000,
        "ridge_alpha": 1e-4,
        "chunk_size": 65_536,
        # 1.6e7 x 1536 features do not fit in memory: every ridge head
        # streams them chunk by chunk instead
        "share_features": False,
        "width": 256,
        "network": {"learning_rate": 5e-5, "batch_size": 16_384, "max_iter": 100},
        "head": {"learning_rate": 5e-5, "batch_size": 16_384, "max_iter": 100},
        "featurizer": dict(PAPER_FEATURIZER),
    },
}


# Rows per call of the featurizer in _time_features: bounds the memory of the
# full 6-time output when fewer times are kept.
_FEATURE_CHUNK = 16_384


def _time_features(X, featurizer, columns):
    """The featurizer's output restricted to ``columns``, chunk by chunk."""
    out = np.empty((len(X), len(columns)), dtype=np.float32)
    for start in range(0, len(X), _FEATURE_CHUNK):
        rows = slice(start, start + _FEATURE_CHUNK)
        out[rows] = featurizer.transform(X[rows])[:, columns]
    return out


def time_columns(featurizer, times):
    """Columns of a fitted featurizer's output that hold the given pseudo-times.

    Column ``i * n_hidden + j`` of :meth:`DiffusionFeaturizer.transform` is
    unit ``j`` at ``feature_times_[i]``.
    """
    n_hidden = featurizer.n_hidden
    blocks = [
        np.arange(i * n_hidden, (i + 1) * n_hidden)
        for i, t in enumerate(featurizer.feature_times_)
        if t in times
    ]
    if len(blocks) != len(times):
        raise ValueError(
            f"The featurizer has times {featurizer.feature_times_.tolist()}, "
            f"not all of {list(times)}."
        )
    return np.concatenate(blocks)


def transfer_parts(name, settings, seed, featurizers):
    """Features and head of a transfer (or untrained) model, apart.

    Returns ``(features, head)``: ``features`` maps states to the model's
    pseudo-time features with the fitted featurizer (it needs no fit);
    ``head`` is the unfitted regressor on them (ridge on standardised
    features, or one hidden layer).
    """
    from .. import DenseRegressor
    from ..linear_model import StreamingRidge

    kind, builder, options = MODELS[name]
    featurizer = featurizers[kind]
    columns = time_columns(featurizer, options["times"])
    features = FunctionTransformer(
        _time_features, kw_args={"featurizer": featurizer, "columns": columns}
    )
    if builder == "ridge":
        head = StreamingRidge(
            settings["ridge_alpha"], standardize=True, chunk_size=settings["chunk_size"]
        )
    else:
        head = DenseRegressor(
            (settings["width"],), **settings["head"], **_fixed_budget(seed)
        )
    return features, head


def _fixed_budget(seed):
    # train for exactly max_iter epochs: no early stop on small improvements
    return {"random_state": seed, "n_iter_no_change": 10**9, "tol": 0.0}


def build_model(name, settings, seed, featurizers):
    """The regressor of the increment for the model ``name``.

    Ridge heads are :class:`~skdiffusion.linear_model.StreamingRidge` on
    standardised features, so the feature matrix is never held whole.

    Parameters
    ----------
    name : str
        A key of :data:`MODELS`.
    settings : dict
        The experiment's settings (``ridge_alpha``, ``chunk_size``,
        ``width``, ``network``, ``head``).
    seed : int
        Seeds the model's randomness.
    featurizers : dict
        Fitted featurizers ``{"transfer": ..., "untrained": ...}``, shared
        by every model of this seed; they are not refitted.

    Returns
    -------
    regressor : estimator
        Unfitted regressor.
    """
    from .. import DenseRegressor, ResidualRegressor, RFFFeaturizer
    from ..linear_model import StreamingRidge

    kind, builder, options = MODELS[name]
    width = settings["width"]

    def ridge(transformer):
        return StreamingRidge(
            settings["ridge_alpha"],
            transformer=transformer,
            standardize=True,
            chunk_size=settings["chunk_size"],
        )

    if builder == "rff":
        return ridge(RFFFeaturizer(options["n_components"], random_state=seed))
    if builder == "poly":
        return ridge(PolynomialFeatures(options["degree"], include_bias=False))
    if builder == "dense":
        layers = (width,) * options["n_layers"]
        return DenseRegressor(layers, **settings["network"], **_fixed_budget(seed))
    if builder == "residual":
        return ResidualRegressor(
            width,
            n_blocks=options["n_blocks"],
            **settings["network"],
            **_fixed_budget(seed),
        )
    features, head = transfer_parts(name, settings, seed, featurizers)
    if builder == "ridge":
        return head.set_params(transformer=features)
    return Pipeline([("features", features), ("head", head)])


def fit_featurizers(X, settings, seed):
    """The trained and the untrained featurizer of one seed, fitted on ``X``."""
    from .. import DiffusionFeaturizer

    trained = DiffusionFeaturizer(
        feature_times=ALL_TIMES, random_state=seed, **settings["featurizer"]
    ).fit(X)
    # the same network with its initial weights
    untrained = (
        DiffusionFeaturizer(
            feature_times=ALL_TIMES, random_state=seed, **settings["featurizer"]
        )
        .set_params(max_iter=0)
        .fit(X)
    )
    return {"transfer": trained, "untrained": untrained}


def surrogate_comparison(
    preset="quick",
    *,
    models=None,
    n_seeds=None,
    output_dir=None,
    random_state=0,
    verbose=False,
    **settings,
):
    """Compare surrogate models of Lorenz 63 over seeds (the paper's Table 3).

    Every model learns the increment over 0.1 model time units (MTU) from
    the same training trajectories and is rolled out autoregressively from
    held-out test states. Per seed, one diffusion featurizer is trained on
    the training states and shared, frozen, by all transfer models; an
    untrained one (``max_iter=0``) by the untrained models.

    Parameters
    ----------
    preset : {"quick", "paper"}, default="quick"
        ``"quick"`` runs in minutes on two CPU cores (small data, short
        training); ``"paper"`` uses the paper's data (1.6e7 training
        states) and recipes and needs a GPU and about 70 GB of memory (the
        shallow heads' features; ridge heads stream theirs).
    models : list of str or None, default=None
        Names from :data:`MODELS` to run; None runs all.
    n_seeds : int or None, default=None
        Number of seeds; None takes the preset's (3 quick, 10 paper).
    output_dir : str, path or None, default=None
        If given, write ``surrogate_comparison.csv`` (this table),
        ``surrogate_summary.csv`` (:func:`summarize_surrogates`) and
        ``surrogate_comparison.png`` (:func:`plot_surrogate_comparison`).
    random_state : int, default=0
        Seeds the data (fixed across model seeds) and the model seeds.
    verbose : bool, default=False
        Print progress.
    **settings
        Overrides of the preset's settings (e.g. ``n_train_steps=1000``);
        see ``PRESETS``.

    Returns
    -------
    table : pandas.DataFrame or dict of ndarray
        One row per model, seed and lead time (0 to ``n_leads`` steps of
        0.1 MTU) with columns ``model``, ``kind`` ("baseline", "scratch",
        "transfer", "untrained" or "truth"), ``seed``, ``lead_time`` (MTU),
        ``nrmse`` (normalised units; NaN once a trajectory blew up),
        ``hellinger`` (climate distance of the long rollout), ``blown_up``
        (fraction of trajectories), ``fit_time`` (s; the head only for
        transfer and untrained models) and ``pretrain_time`` (s, training
        the seed's featurizers and computing their features of the training
        states, shared by those models; NaN for the others). Rows of
        model ``"truth"`` (seed -1, ``nrmse`` NaN) give the Hellinger
        distance of true states sampled like a forecast climate: the floor
        from sampling alone.

    Notes
    -----
    Ridge heads are :class:`~skdiffusion.linear_model.StreamingRidge` with
    ``alpha = ridge_alpha`` (1e-4, the paper's lambda) on standardised
    features, accumulated in float64. From-scratch networks and shallow
    heads train for a fixed number of epochs with constant-rate Adam.

    The transfer and untrained models read the seed's featurizer at all
    six pseudo-times (0, 50, 100, 200, 400, 600), at t = 400 alone, or at
    t = 0 and 400 for the shallow head (the issue's "two times"; the
    paper's public configurations also have shallow heads on six times and
    on t = 400, which ``MODELS`` can be extended with).

    In the ``"quick"`` preset everything is small: about 10^4 training
    pairs, a featurizer trained for 200 steps of 1024 states (see
    :class:`~skdiffusion.DiffusionFeaturizer` for its recipe), networks and
    heads for 20 epochs, 128 rollouts of 10 MTU scored and 32 continued for
    30 MTU more for the climate. Its numbers show the method at work, not
    the paper's converged values.
    """
    settings = resolve_preset(PRESETS, preset, {"n_seeds": n_seeds, **settings})
    names = list(MODELS) if models is None else list(models)
    unknown = sorted(set(names) - set(MODELS))
    if unknown:
        raise ValueError(f"Unknown model(s) {unknown}; choose from {list(MODELS)}.")
    progress = Progress(verbose, "surrogates")
    # one stream: the first seeds of n_seeds=3 are those of n_seeds=10
    data_seed, climate_seed, *model_seeds = seeds_from(
        random_state, 2 + settings["n_seeds"]
    )
    train, test = lorenz63_data(
        settings["n_train_trajectories"],
        settings["n_train_steps"],
        settings["n_test_trajectories"],
        settings["n_test_steps"],
        random_state=data_seed,
    )
    progress(f"{len(train.X)} training pairs, {test.states.shape[:2]} test states")
    X, Y = train.X, train.X + train.y
    records = []
    floor = climate_floor(
        test,
        random_state=climate_seed,
        n_climate=settings["n_climate"],
        climate_leads=settings["climate_leads"],
    )
    no_forecast = np.full(settings["n_leads"] + 1, np.nan)
    records.append(
        _record("truth", "truth", -1, no_forecast, floor, 0.0, np.nan, np.nan)
    )

    needs_featurizer = any(
        MODELS[name][0] in ("transfer", "untrained") for name in names
    )
    for seed_index, seed in enumerate(model_seeds):
        featurizers, shared = {}, {"train_features": None, "time": np.nan}
        if needs_featurizer:
            start = time.perf_counter()
            featurizers = fit_featurizers(train.X, settings, seed)
            if settings["share_features"]:
                kinds = {MODELS[name][0] for name in names}
                shared["train_features"] = {
                    kind: featurizer.transform(X)
                    for kind, featurizer in featurizers.items()
                    if kind in kinds
                }
            shared["time"] = time.perf_counter() - start
            progress(f"seed {seed_index}: featurizers ready in {shared['time']:.0f} s")
        for name in names:
            records.append(
                _run_model(
                    name,
                    settings,
                    seed,
                    featurizers,
                    X,
                    Y,
                    test,
                    shared,
                    progress,
                )
            )
    columns = _tidy(records)
    table = make_table(columns)
    save_outputs(
        output_dir, "surrogate_comparison", table, plot_surrogate_comparison, progress
    )
    if output_dir is not None:
        save_outputs(
            output_dir,
            "surrogate_summary",
            summarize_surrogates(table),
            progress=progress,
        )
    return table


def fit_surrogate(name, settings, seed, featurizers, X, Y, train_features=None):
    """Fit the surrogate ``name`` on states ``X`` and next states ``Y``.

    With ``train_features`` (``{kind: featurizer.transform(X)}``), the head
    of a transfer or untrained model is fitted on those shared features
    instead of recomputing them; the features and the fitted head are then
    put together in a pipeline, which the forecaster wraps frozen.

    Returns
    -------
    forecaster : SurrogateForecaster
        Fitted.
    """
    from ..surrogate import SurrogateForecaster

    kind = MODELS[name][0]
    with warnings.catch_warnings():
        # fixed training budgets: not converging is expected
        warnings.simplefilter("ignore", ConvergenceWarning)
        if train_features is None or kind not in train_features:
            model = build_model(name, settings, seed, featurizers)
            return SurrogateForecaster(model).fit(X, Y)
        features, head = transfer_parts(name, settings, seed, featurizers)
        columns = features.kw_args["columns"]
        head.fit(train_features[kind][:, columns], Y - X)
        model = Pipeline([("features", features), ("head", head)])
        return SurrogateForecaster(FrozenEstimator(model)).fit(X, Y)


def _run_model(name, settings, seed, featurizers, X, Y, test, shared, progress):
    kind = MODELS[name][0]
    start = time.perf_counter()
    forecaster = fit_surrogate(
        name, settings, seed, featurizers, X, Y, shared["train_features"]
    )
    fit_time = time.perf_counter() - start
    curve, hellinger, blown_up = forecast_skill(
        forecaster,
        test,
        n_starts=settings["n_starts"],
        n_leads=settings["n_leads"],
        n_climate=settings["n_climate"],
        climate_leads=settings["climate_leads"],
    )
    progress(
        f"{name:<27} fit {fit_time:5.1f} s, nRMSE@0.1 {curve[1]:.2e}, "
        f"@1 {curve[min(10, len(curve) - 1)]:.2e}, Hellinger {hellinger:.3f}"
        + (f", {blown_up:.0%} blew up" if blown_up else "")
    )
    pretrain = shared["time"] if kind in ("transfer", "untrained") else np.nan
    return _record(name, kind, seed, curve, hellinger, blown_up, fit_time, pretrain)


def _record(model, kind, seed, curve, hellinger, blown_up, fit_time, pretrain_time):
    return {
        "model": model,
        "kind": kind,
        "seed": seed,
        "curve": np.asarray(curve, dtype=float),
        "hellinger": float(hellinger),
        "blown_up": float(blown_up),
        "fit_time": float(fit_time),
        "pretrain_time": float(pretrain_time),
    }


def _tidy(records):
    """One row per record and lead time."""
    columns = {
        key: []
        for key in (
            "model",
            "kind",
            "seed",
            "lead_time",
            "nrmse",
            "hellinger",
            "blown_up",
            "fit_time",
            "pretrain_time",
        )
    }
    for record in records:
        curve = record["curve"]
        n = len(curve)
        columns["lead_time"].extend(np.round(np.arange(n) * LEAD_STEPS * DT, 6))
        columns["nrmse"].extend(curve)
        for key in (
            "model",
            "kind",
            "seed",
            "hellinger",
            "blown_up",
            "fit_time",
            "pretrain_time",
        ):
            columns[key].extend([record[key]] * n)
    return columns


def _leads_of(lead_times, available):
    index = {round(float(t), 6): i for i, t in enumerate(available)}
    return [t for t in lead_times if round(float(t), 6) in index]


def summarize_surrogates(table, lead_times=TABLE_LEAD_TIMES):
    """Median and 5-95 % range over seeds of each model's scores.

    Parameters
    ----------
    table : pandas.DataFrame or dict of ndarray
        The table returned by :func:`surrogate_comparison`.
    lead_times : sequence of float, default=(0.1, 1, 2, 5, 10)
        Lead times (MTU) to report; those beyond the forecasts are dropped.

    Returns
    -------
    summary : pandas.DataFrame or dict of ndarray
        One row per model and metric (``"nrmse@<lead>"``, ``"hellinger"``
        and ``"blown_up"``, the fraction of rollouts that left the attractor)
        with columns ``model``, ``kind``, ``metric``, ``median``, ``q05``,
        ``q95`` and ``n_seeds``. An nRMSE is NaN where a rollout of any seed
        had blown up by that lead time.
    """
    columns = table_columns(table)
    leads = _leads_of(lead_times, np.unique(columns["lead_time"]))
    rows = {
        key: []
        for key in ("model", "kind", "metric", "median", "q05", "q95", "n_seeds")
    }
    for model in dict.fromkeys(columns["model"]):
        mine = columns["model"] == model
        kind = columns["kind"][mine][0]
        metrics = []
        for lead in leads:
            at = mine & np.isclose(columns["lead_time"], lead)
            metrics.append((f"nrmse@{lead:g}", columns["nrmse"][at]))
        first = mine & (columns["lead_time"] == 0)
        metrics.append(("hellinger", columns["hellinger"][first]))
        metrics.append(("blown_up", columns["blown_up"][first]))
        for metric, values in metrics:
            median, q05, q95 = percentile_summary(values)
            for key, value in zip(
                rows, (model, kind, metric, median, q05, q95, len(values)), strict=True
            ):
                rows[key].append(value)
    return make_table(rows)


def format_summary(summary):
    """The summary as two printable tables: medians, then 5-95 % ranges.

    Parameters
    ----------
    summary : pandas.DataFrame or dict of ndarray
        From :func:`summarize_surrogates`.

    Returns
    -------
    text : str
        Models x metrics, first the median over seeds (the paper's Table 3
        layout), then the range from the 5th to the 95th percentile. "blew
        up" marks an nRMSE where a rollout of some seed had left the
        attractor by that lead time; ``blown_up`` gives how many did.
    """
    columns = table_columns(summary)
    metrics = list(dict.fromkeys(columns["metric"]))
    models = list(dict.fromkeys(columns["model"]))
    medians, ranges = {"model": models}, {"model": models}
    for metric in metrics:
        medians[metric], ranges[metric] = [], []
        for model in models:
            at = (columns["model"] == model) & (columns["metric"] == metric)
            median, q05, q95 = (columns[key][at][0] for key in ("median", "q05", "q95"))
            if columns["kind"][at][0] == "truth" and metric != "hellinger":
                median_cell = range_cell = "-"
            elif metric == "blown_up":
                median_cell = f"{100 * median:.0f} %"
                range_cell = f"{100 * q05:.0f}-{100 * q95:.0f} %"
            elif np.isnan(median):
                median_cell = range_cell = "blew up"
            else:
                median_cell, range_cell = f"{median:.2e}", f"{q05:.1e}-{q95:.1e}"
            medians[metric].append(median_cell)
            ranges[metric].append(range_cell)
    n_seeds = int(np.max(columns["n_seeds"]))
    return "\n".join(
        [
            f"Median over {n_seeds} seeds:",
            format_table(medians),
            "",
            "5 %-95 % range over seeds:",
            format_table(ranges),
        ]
    )


def transfer_vs_scratch(summary, metric="nrmse@0.1"):
    """Whether each transfer model lies within the seed range of the from-scratch ones.

    Parameters
    ----------
    summary : pandas.DataFrame or dict of ndarray
        From :func:`summarize_surrogates`.
    metric : str, default="nrmse@0.1"
        The metric compared.

    Returns
    -------
    verdict : dict
        ``"scratch_range"``: (lowest q05, highest q95) over the from-scratch
        networks; ``"transfer"``: {model: (median, within)} where ``within``
        says whether the median lies in that range.
    """
    columns = table_columns(summary)
    at = columns["metric"] == metric
    scratch = at & (columns["kind"] == "scratch")
    low = float(np.min(columns["q05"][scratch])) if scratch.any() else np.nan
    high = float(np.max(columns["q95"][scratch])) if scratch.any() else np.nan
    transfer = {}
    for i in np.flatnonzero(at & (columns["kind"] == "transfer")):
        median = float(columns["median"][i])
        transfer[str(columns["model"][i])] = (median, bool(low <= median <= high))
    return {"metric": metric, "scratch_range": (low, high), "transfer": transfer}


_STYLES = {
    "baseline": {"color": "tab:gray"},
    "scratch": {"color": "tab:blue"},
    "transfer": {"color": "tab:red"},
    "untrained": {"color": "tab:olive"},
}


def plot_surrogate_comparison(table, ax=None):
    """Plot the nRMSE against lead time: median over seeds, 5-95 % band.

    Parameters
    ----------
    table : pandas.DataFrame or dict of ndarray
        The table returned by :func:`surrogate_comparison`.
    ax : matplotlib Axes or None, default=None
        Where to draw; None makes a new figure.

    Returns
    -------
    figure : matplotlib.figure.Figure
        The figure drawn on.
    """
    import matplotlib.pyplot as plt

    columns = table_columns(table)
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 5))
    linestyles = ["-", "--", ":", "-."]
    used = {}
    for model in dict.fromkeys(columns["model"]):
        mine = columns["model"] == model
        kind = columns["kind"][mine][0]
        if kind == "truth":
            continue
        seeds = np.unique(columns["seed"][mine])
        leads = np.unique(columns["lead_time"][mine])[1:]  # lead 0 is exact
        curves = np.array(
            [
                [
                    columns["nrmse"][
                        mine
                        & (columns["seed"] == s)
                        & np.isclose(columns["lead_time"], t)
                    ][0]
                    for t in leads
                ]
                for s in seeds
            ]
        )
        median = np.median(curves, axis=0)
        low, high = np.percentile(curves, [5, 95], axis=0)
        style = used.setdefault(kind, 0)
        used[kind] += 1
        color = _STYLES[kind]["color"]
        ax.plot(
            leads, median, color=color, linestyle=linestyles[style % 4], label=model
        )
        ax.fill_between(leads, low, high, color=color, alpha=0.15, linewidth=0)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("lead time (MTU)")
    ax.set_ylabel("nRMSE (normalised units)")
    ax.set_title("Lorenz 63 surrogates: median and 5-95 % over seeds")
    ax.legend(fontsize="small", bbox_to_anchor=(1.02, 1), loc="upper left")
    ax.grid(True, which="major", alpha=0.3)
    return ax.figure
