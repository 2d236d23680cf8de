"""Forecast and generation metrics of Finn et al. (2024), and sklearn scorers.

Forecast skill is the normalised root-mean-squared error per lead time
(:func:`nrmse`); the one-step version of it is available as a scorer for
model selection (:data:`neg_nrmse_scorer`, :func:`make_nrmse_scorer`). How
long a rollout stays close to the truth is its valid prediction time
(:func:`valid_prediction_time`, in model time or in Lyapunov times with
:data:`LYAPUNOV_EXPONENTS`), also a scorer (:func:`make_vpt_scorer`), as
is the error of whole rollouts (:func:`make_rollout_scorer`).
Generated states (or the long-run climate of a forecast) are compared with a
reference sample by :func:`hellinger_distance` between histograms,
:func:`nearest_neighbour_distances` and :func:`extreme_fraction`.
"""

import functools
from numbers import Integral, Real
from types import MappingProxyType

import numpy as np
from scipy.spatial import cKDTree
from sklearn.metrics import make_scorer
from sklearn.utils import _safe_indexing
from sklearn.utils._param_validation import Interval, StrOptions

from ._validation import check_array, check_numeric, validate_params

__all__ = [
    "LYAPUNOV_EXPONENTS",
    "extreme_fraction",
    "hellinger_distance",
    "make_nrmse_scorer",
    "make_rollout_scorer",
    "make_vpt_scorer",
    "nearest_neighbour_distances",
    "neg_nrmse_scorer",
    "nrmse",
    "valid_prediction_time",
]

LYAPUNOV_EXPONENTS = MappingProxyType({"lorenz63": 0.906, "lorenz96": 1.68})
"""Leading Lyapunov exponents, per model time unit (MTU), by system name.

``"lorenz63"``: 0.906 (sigma 10, rho 28, beta 8/3; a Lyapunov time of 1.10
MTU). ``"lorenz96"``: about 1.68 (F = 8, 40 variables; the literature gives
1.66 to 1.68; a Lyapunov time of 0.60 MTU). Pass one as
``lyapunov_exponent`` to :func:`valid_prediction_time` or
:func:`make_vpt_scorer` to get times in Lyapunov times.
"""


def _as_3d(a, name):
    """Return ``a`` as (n_samples, n_leads, n_features) and its original ndim."""
    check_numeric(a, name)
    a = np.asarray(a, dtype=float)
    if a.ndim not in (1, 2, 3):
        raise ValueError(
            f"{name} must have shape (n_samples,), (n_samples, n_features) or "
            f"(n_samples, n_leads, n_features), got shape {a.shape}."
        )
    ndim = a.ndim
    if ndim == 1:
        a = a[:, None, None]
    elif ndim == 2:
        a = a[:, None, :]
    return a, ndim


@validate_params(
    {
        "y_true": ["array-like"],
        "y_pred": ["array-like"],
        "std": [Interval(Real, 0, None, closed="neither"), "array-like", None],
        "nan_policy": [StrOptions({"propagate", "omit"})],
    },
    prefer_skip_nested_validation=True,
)
def nrmse(y_true, y_pred, *, std=None, nan_policy="propagate"):
    """Normalised root-mean-squared error, per lead time.

    ``nrmse = sqrt(mean(((y_pred - y_true) / std) ** 2))``, the mean taken over
    samples and features, separately for each lead time.

    Parameters
    ----------
    y_true : array-like of shape (n_samples, n_leads, n_features)
        True states. Shapes (n_samples, n_features) (one lead time, e.g. a
        one-step prediction) and (n_samples,) (one feature) are accepted too.
    y_pred : array-like of the same shape as ``y_true``
        Forecast states, e.g. from
        :meth:`skdiffusion.surrogate.SurrogateForecaster.forecast`. Trajectories
        that blew up are NaN from that step on.
    std : float, array-like of shape (n_features,) or None, default=None
        Climatological standard deviation of each feature. ``None`` estimates
        it from ``y_true`` (over samples and lead times, ignoring NaN), which is
        right when the samples cover the attractor. On states normalised by
        the climatology (as :func:`skdiffusion.datasets.make_lorenz63` returns
        them) pass ``std=1.0`` to get the paper's "RMSE in normalised units";
        pass it also when ``y_true`` holds increments rather than states.
    nan_policy : {"propagate", "omit"}, default="propagate"
        What NaN (a trajectory that blew up) does. ``"propagate"``: the
        nRMSE of every lead time where any forecast is NaN is NaN, so a
        blow-up is never hidden. ``"omit"``: each lead time averages over the
        finite pairs only (NaN where there are none); note this scores the
        surviving trajectories alone.

    Returns
    -------
    score : float or ndarray of shape (n_leads,)
        A float for 1-D and 2-D input, one value per lead time for 3-D input.
        0 is a perfect forecast; a forecast by an independent state of the
        same climate scores about ``sqrt(2)``, the climatological mean about 1.

    See Also
    --------
    make_nrmse_scorer : The one-step version as a scorer for model selection.

    Notes
    -----
    Finn et al. (2024) report this score for 100-step (10 MTU) autoregressive
    forecasts from many test states of Lorenz 63, in normalised units.

    Examples
    --------
    >>> import numpy as np
    >>> from skdiffusion.metrics import nrmse
    >>> truth = np.zeros((2, 3, 1))
    >>> forecast = truth + np.array([0.0, 0.1, 1.0])[None, :, None]
    >>> nrmse(truth, forecast, std=1.0)
    array([0. , 0.1, 1. ])
    """
    squared, ndim = _normalised_squared_errors(y_true, y_pred, std)
    mean = np.mean if nan_policy == "propagate" else _nanmean_quiet
    score = np.sqrt(mean(squared, axis=(0, 2)))
    return float(score[0]) if ndim < 3 else score


def _normalised_squared_errors(y_true, y_pred, std):
    """``((y_pred - y_true) / std) ** 2`` as (n_samples, n_leads, n_features).

    Also returns the ndim of ``y_true``. ``std=None`` is the standard
    deviation of ``y_true`` per feature, over samples and leads.
    """
    y_true, ndim = _as_3d(y_true, "y_true")
    y_pred, _ = _as_3d(y_pred, "y_pred")
    if y_true.shape != y_pred.shape:
        raise ValueError(
            f"y_true and y_pred must have the same shape, got {y_true.shape} "
            f"and {y_pred.shape}."
        )
    if np.isinf(y_true).any() or np.isinf(y_pred).any():
        raise ValueError("y_true and y_pred must not contain infinity.")
    if std is None:
        std = np.nanstd(y_true, axis=(0, 1))
        if not np.all(std > 0):
            raise ValueError(
                "std must be positive for every feature; std=None took the "
                f"standard deviation of y_true per feature, {std}: pass std."
            )
    std = _check_std(std, y_true.shape[-1])
    return ((y_pred - y_true) / std) ** 2, ndim


def _check_std(std, n_features=None):
    """`std` as positive finite floats of shape (n_features,), or a ValueError.

    Without `n_features` only its values (and that it is a number or 1-D)
    are checked, e.g. when a scorer is made.
    """
    check_numeric(std, "std")
    values = np.asarray(std, dtype=float)
    if values.ndim > 1 or (
        n_features is not None and values.size not in (1, n_features)
    ):
        wanted = "(n_features,)" if n_features is None else f"({n_features},)"
        raise ValueError(
            f"std must be a number or have shape {wanted}, got shape "
            f"{values.shape}."
        )
    if not np.all((values > 0) & np.isfinite(values)):
        raise ValueError(
            f"std must be positive and finite for every feature, got {std!r}."
        )
    return values if n_features is None else np.broadcast_to(values, (n_features,))


def _nanmean_quiet(a, axis):
    """``np.nanmean`` that returns NaN for all-NaN slices without warning."""
    count = np.sum(~np.isnan(a), axis=axis)
    total = np.nansum(a, axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


@validate_params(
    {"std": [Interval(Real, 0, None, closed="neither"), "array-like", None]},
    prefer_skip_nested_validation=True,
)
def make_nrmse_scorer(*, std=None):
    """Scorer of the one-step nRMSE, for ``scoring=`` in a search.

    Parameters
    ----------
    std : float, array-like of shape (n_features,) or None, default=None
        Passed to :func:`nrmse`. ``None`` takes the climatological standard
        deviation from the ``y`` of each validation fold, which suits a
        :class:`~skdiffusion.surrogate.SurrogateForecaster` (whose ``y`` are
        next states). Give it explicitly (e.g. ``1.0`` on normalised states)
        when scoring a bare regressor of increments.

    Returns
    -------
    scorer : callable
        ``scorer(estimator, X, y)`` returns ``-nrmse(y, estimator.predict(X))``.
        Like sklearn's ``neg_mean_squared_error`` it is negated
        (``greater_is_better=False``) so that a search maximising the score
        minimises the nRMSE; ``cv_results_`` hold negative values.

    See Also
    --------
    nrmse : The error this scorer computes.
    sklearn.metrics.make_scorer : How the scorer is built.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import Ridge
    >>> from sklearn.model_selection import cross_val_score
    >>> from skdiffusion.metrics import make_nrmse_scorer
    >>> X = np.random.default_rng(0).normal(size=(40, 3))
    >>> scores = cross_val_score(Ridge(), X, 2 * X, scoring=make_nrmse_scorer())
    >>> bool(np.all(scores <= 0))
    True
    """
    if std is not None:
        _check_std(std)  # now, not when the search first scores
    return make_scorer(nrmse, greater_is_better=False, std=std)


neg_nrmse_scorer = make_nrmse_scorer()
"""Scorer returning minus the one-step :func:`nrmse` (std taken from ``y``)."""

_VPT_CONSTRAINTS = {
    "dt": [Interval(Real, 0, None, closed="neither")],
    "threshold": [Interval(Real, 0, None, closed="neither")],
    "std": [Interval(Real, 0, None, closed="neither"), "array-like", None],
    "lyapunov_exponent": [Interval(Real, 0, None, closed="neither"), None],
}


@validate_params(
    {
        "y_true": ["array-like"],
        "y_pred": ["array-like"],
        **_VPT_CONSTRAINTS,
        "per_rollout": ["boolean"],
    },
    prefer_skip_nested_validation=True,
)
def valid_prediction_time(y_true, y_pred, *, dt, threshold=0.5, std=None,
                          lyapunov_exponent=None, per_rollout=False):
    """Time until a rollout's nRMSE first exceeds a threshold, median over rollouts.

    For each rollout, the nRMSE at each lead (over its features, normalised
    by the climatological standard deviation, as :func:`nrmse`) is compared
    with ``threshold``; the valid prediction time (VPT) is the first lead
    time at which it exceeds it.

    Parameters
    ----------
    y_true : array-like of shape (n_rollouts, n_leads, n_features)
        True trajectories; ``y_true[:, k]`` is the truth ``k * dt`` after the
        start (``k = 0`` the initial state).
    y_pred : array-like of shape (n_rollouts, n_leads, n_features)
        Forecasts from the same starts, e.g. the output of
        :meth:`skdiffusion.surrogate.SurrogateForecaster.forecast` (initial
        state first). NaN (a rollout that blew up) counts as beyond the
        threshold.
    dt : float
        Time between two leads (> 0), in model time units (MTU): the
        surrogate's step, e.g. ``data.dt * data.lead_steps``.
    threshold : float, default=0.5
        The nRMSE a valid forecast does not exceed (> 0); 0.5 is the usual
        choice, 0.05 a stricter variant.
    std : float, array-like of shape (n_features,) or None, default=None
        Climatological standard deviation of each feature, as in
        :func:`nrmse`: ``None`` estimates it from ``y_true`` (over rollouts
        and leads, right when the rollouts cover the attractor); pass
        ``1.0`` on normalised states.
    lyapunov_exponent : float or None, default=None
        If given (per MTU, e.g. ``LYAPUNOV_EXPONENTS["lorenz96"]``), return
        the time in Lyapunov times (``VPT * lyapunov_exponent``) instead of
        MTU.
    per_rollout : bool, default=False
        Return the VPT of every rollout instead of their median.

    Returns
    -------
    vpt : float or ndarray of shape (n_rollouts,)
        The median VPT over rollouts (or each rollout's), in MTU or in
        Lyapunov times. A rollout whose nRMSE never exceeds the threshold
        gets the full horizon ``(n_leads - 1) * dt``: a lower bound.

    See Also
    --------
    nrmse : The error curve, averaged over rollouts.
    make_vpt_scorer : The VPT as a scorer for model selection.
    LYAPUNOV_EXPONENTS : Leading exponents of the package's systems.

    Notes
    -----
    The VPT is taken per rollout, then summarised by the median: each
    initial state has its own predictability, a few rollouts that blow up
    early do not decide the score, and ``per_rollout=True`` gives the spread
    (e.g. percentiles). The first lead at which the rollout-mean curve
    :func:`nrmse` exceeds the threshold is usually shorter, since the mean
    squared error is dominated by the worst rollouts.

    Pathak, Hunt, Girvan, Lu & Ott (2018), "Model-free prediction of large
    spatiotemporally chaotic systems from data: a reservoir computing
    approach", Phys. Rev. Lett. 120, 024102, and Vlachas et al. (2020),
    Neural Networks 126, 191-217, report the VPT in Lyapunov times with
    thresholds of 0.4 to 0.5.

    Examples
    --------
    >>> import numpy as np
    >>> from skdiffusion.metrics import valid_prediction_time
    >>> truth = np.zeros((2, 5, 1))
    >>> error = np.array([[0.0, 0.1, 0.3, 0.6, 0.2], [0.0, 0.2, 0.4, 0.5, 0.5]])
    >>> forecast = truth + error[:, :, None]
    >>> valid_prediction_time(truth, forecast, dt=0.1, std=1.0, per_rollout=True)
    array([0.3, 0.4])
    >>> round(valid_prediction_time(truth, forecast, dt=0.1, std=1.0), 2)
    0.35
    """
    squared, ndim = _normalised_squared_errors(y_true, y_pred, std)
    if ndim != 3:
        raise ValueError(
            "y_true and y_pred must be rollouts of shape (n_rollouts, n_leads, "
            f"n_features), got {ndim} dimensions."
        )
    rollout_nrmse = np.sqrt(np.mean(squared, axis=2))
    with np.errstate(invalid="ignore"):
        beyond = ~(rollout_nrmse <= threshold)  # NaN is beyond
    n_leads = beyond.shape[1]
    first = np.where(beyond.any(axis=1), beyond.argmax(axis=1), n_leads - 1)
    times = first * float(dt)
    if lyapunov_exponent is not None:
        times = times * lyapunov_exponent
    return times if per_rollout else float(np.median(times))


def _chain_starts(link, n_steps, stride):
    """Rows ``i`` with ``link[i + k * stride]`` for every ``k < n_steps``."""
    span = (n_steps - 1) * stride
    if len(link) <= span:
        return np.empty(0, dtype=np.intp)
    # counts[j + stride]: number of links at j, j - stride, j - 2 stride, ...
    counts = np.zeros(len(link) + stride, dtype=np.intp)
    for residue in range(stride):
        counts[residue + stride :: stride] = np.cumsum(link[residue::stride])
    starts = np.arange(len(link) - span)
    return starts[counts[starts + span + stride] - counts[starts] == n_steps]


def _rollouts(estimator, X, y, *, n_steps, lead_steps, n_rollouts, target):
    """Rollouts of ``estimator`` from the rows of X that start a run, and truth.

    Returns ``(truth, forecast)``, both of shape (n_starts, n_steps + 1,
    n_state): see the Notes of :func:`make_vpt_scorer`.
    """
    states = check_array(X, dtype=np.float64, input_name="X")
    next_states = np.asarray(y, dtype=np.float64).reshape(len(states), -1)
    n_state = next_states.shape[1]
    if target == "increment":
        next_states = states[:, :n_state] + next_states
    # Row j's next state is row j + lead_steps where the two agree.
    gap = np.abs(next_states[:-lead_steps] - states[lead_steps:, :n_state])
    tolerance = 1e-5 * np.max(np.abs(states[:, :n_state]))
    link = np.max(gap, axis=1, initial=0.0) <= tolerance
    starts = _chain_starts(link, n_steps, lead_steps)
    if not starts.size:
        raise ValueError(
            f"No row of X starts {n_steps} steps (n_steps) of consecutive "
            f"states, each lead_steps={lead_steps} rows after the last with y "
            f"holding it (target={target!r}): rollout scorers need contiguous "
            "rows of trajectories, as pairs_from_trajectories and the make_ "
            "functions order them, in folds that keep them (KFold without "
            "shuffling, GroupKFold)."
        )
    if n_rollouts is not None and starts.size > n_rollouts:
        starts = starts[np.linspace(0, starts.size - 1, n_rollouts).round().astype(int)]
    rows = starts[:, None] + lead_steps * np.arange(n_steps + 1)
    X0 = _safe_indexing(X, starts)
    if hasattr(estimator, "forecast"):
        forecast = estimator.forecast(X0, n_steps)
    else:
        bounds = _climate_bounds(states[:, :n_state])
        forecast = _roll_out(
            estimator, check_array(X0), n_steps, n_state, target, bounds
        )
    return states[rows, :n_state], forecast[:, :, :n_state]


def _climate_bounds(states, n_std=10.0):
    """(low, high) of each variable: ``n_std`` standard deviations about the mean.

    Like :class:`~skdiffusion.surrogate.SurrogateForecaster`'s default
    ``blowup_threshold``: a state beyond them has blown up.
    """
    mean, std = states.mean(axis=0), states.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    return mean - n_std * std, mean + n_std * std


def _roll_out(regressor, X0, n_steps, n_state, target, bounds):
    """Feed a regressor of next states (or increments) its own predictions.

    A state outside ``bounds`` (or non-finite) has blown up: NaN from there
    on, and never fed to the regressor.
    """
    trajectories = np.full((len(X0), n_steps + 1, X0.shape[1]), np.nan)
    trajectories[:, 0] = X0
    low, high = bounds
    for step in range(1, n_steps + 1):
        states = trajectories[:, step - 1].copy()
        alive = np.all(np.isfinite(states), axis=1)
        if not alive.any():
            break
        with np.errstate(over="ignore", invalid="ignore"):
            predicted = np.reshape(regressor.predict(states[alive]), (-1, n_state))
            if target == "increment":
                predicted = predicted + states[alive, :n_state]
            inside = np.all((predicted >= low) & (predicted <= high), axis=1)
        predicted[~inside] = np.nan
        states[alive, :n_state] = predicted
        states[~alive] = np.nan
        trajectories[:, step] = states
    return trajectories


def _vpt_score(estimator, X, y, *, n_steps, dt, lead_steps, threshold, std,
               lyapunov_exponent, n_rollouts):
    """The scorer of :func:`make_vpt_scorer`."""
    truth, forecast = _rollouts(
        estimator, X, y, n_steps=n_steps, lead_steps=lead_steps,
        n_rollouts=n_rollouts, target="next_state",
    )
    return valid_prediction_time(
        truth, forecast, dt=dt, threshold=threshold, std=std,
        lyapunov_exponent=lyapunov_exponent,
    )


def _held_last_finite(forecast):
    """Forecasts with each blown-up (non-finite) state replaced by the last finite."""
    held = np.array(forecast, dtype=np.float64)
    for lead in range(1, held.shape[1]):
        bad = ~np.all(np.isfinite(held[:, lead]), axis=1)
        held[bad, lead] = held[bad, lead - 1]
    return held


def _rollout_score(estimator, X, y, *, n_steps, lead_steps, std, n_rollouts,
                   target):
    """The scorer of :func:`make_rollout_scorer`."""
    truth, forecast = _rollouts(
        estimator, X, y, n_steps=n_steps, lead_steps=lead_steps,
        n_rollouts=n_rollouts, target=target,
    )
    if std is None:  # the climatology of the fold's states
        std = truth.reshape(-1, truth.shape[2]).std(axis=0)
    scale = np.broadcast_to(np.asarray(std, dtype=np.float64), truth.shape[2:])
    scale = np.where(scale > 0, scale, 1.0)
    error = (_held_last_finite(forecast)[:, 1:] - truth[:, 1:]) / scale
    with np.errstate(over="ignore"):
        return -float(np.sqrt(np.mean(np.square(error))))


@validate_params(
    {
        "n_steps": [Interval(Integral, 1, None, closed="left")],
        **_VPT_CONSTRAINTS,
        "lead_steps": [Interval(Integral, 1, None, closed="left")],
        "n_rollouts": [Interval(Integral, 1, None, closed="left"), None],
    },
    prefer_skip_nested_validation=True,
)
def make_vpt_scorer(n_steps, dt, *, lead_steps=1, threshold=0.5, std=None,
                    lyapunov_exponent=None, n_rollouts=100):
    """Scorer of the valid prediction time of rollouts, for ``scoring=`` in a search.

    Like :func:`make_nrmse_scorer` it scores an estimator on the ``(X, y)``
    of a validation fold, ``y`` holding the next states: it rolls the
    estimator out for ``n_steps`` steps from rows of ``X`` and takes the
    truth from the later rows of the same fold.

    Parameters
    ----------
    n_steps : int
        Steps of each rollout (>= 1); the VPT is at most ``n_steps * dt``.
    dt : float
        Time of one step of the estimator (> 0), in MTU: ``data.dt *
        data.lead_steps`` for pairs from a ``make_`` function.
    lead_steps : int, default=1
        Rows between a state and its next state in ``X``: ``data.lead_steps``
        for pairs from a ``make_`` function or
        :func:`~skdiffusion.datasets.pairs_from_trajectories`, whose rows
        are the consecutive states of each trajectory.
    threshold, std, lyapunov_exponent
        As in :func:`valid_prediction_time`.
    n_rollouts : int or None, default=100
        Rollouts per fold, from starts evenly spread over the valid ones;
        None rolls out from every valid row (costly: ``n_steps`` predictions
        per row).

    Returns
    -------
    scorer : callable
        ``scorer(estimator, X, y)`` returns the median VPT (greater is
        better) of ``estimator.forecast(X[starts], n_steps)`` against the
        truth ``X[starts + k * lead_steps]``. ``estimator`` must have a
        ``forecast(X0, n_steps)`` method, as
        :class:`~skdiffusion.surrogate.SurrogateForecaster` has.

    See Also
    --------
    valid_prediction_time : The score.
    make_nrmse_scorer : The one-step error as a scorer.

    Notes
    -----
    A row ``i`` starts a rollout when ``y`` of each row ``i + k *
    lead_steps`` (``k < n_steps``) equals row ``i + (k + 1) * lead_steps``
    of ``X`` (to 1e-5 of the largest state value): the rows follow each
    other in one trajectory. Pairs never link across two trajectories or
    across the rows a fold left out, so folds must keep runs of rows
    together (``KFold`` without shuffling, ``GroupKFold`` over the
    ``groups`` of the trajectories, ``TimeSeriesSplit``); a fold with no
    run of ``n_steps`` steps raises a ``ValueError``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import Ridge
    >>> from sklearn.model_selection import GridSearchCV, KFold
    >>> from skdiffusion.datasets import make_trajectories
    >>> from skdiffusion.metrics import make_vpt_scorer
    >>> from skdiffusion.surrogate import SurrogateForecaster
    >>> rotation = lambda x: x @ np.array([[0.0, 1.0], [-1.0, 0.0]])
    >>> data = make_trajectories(rotation, [1.0, 0.0], 600, dt=0.05)
    >>> search = GridSearchCV(
    ...     SurrogateForecaster(Ridge()), {"regressor__alpha": [1e-6, 10.0]},
    ...     scoring=make_vpt_scorer(50, 0.05), cv=KFold(3),
    ... ).fit(data.X, data.X + data.y)
    >>> search.best_params_, float(search.best_score_)
    ({'regressor__alpha': 1e-06}, 2.5)
    """
    return functools.partial(
        _vpt_score, n_steps=n_steps, dt=dt, lead_steps=lead_steps,
        threshold=threshold, std=std, lyapunov_exponent=lyapunov_exponent,
        n_rollouts=n_rollouts,
    )


@validate_params(
    {
        "n_steps": [Interval(Integral, 1, None, closed="left")],
        "lead_steps": [Interval(Integral, 1, None, closed="left")],
        "std": [Interval(Real, 0, None, closed="neither"), "array-like", None],
        "n_rollouts": [Interval(Integral, 1, None, closed="left"), None],
        "target": [StrOptions({"next_state", "increment"})],
    },
    prefer_skip_nested_validation=True,
)
def make_rollout_scorer(n_steps, *, lead_steps=1, std=None, n_rollouts=100,
                        target="next_state"):
    """Scorer of the error of ``n_steps``-step rollouts, for ``scoring=`` in a search.

    The one-step error (:func:`make_nrmse_scorer`) rewards models that are
    accurate one step ahead even when their rollouts are unstable: a
    penalty chosen on it can leave a few rollouts that blow up. This scorer
    rolls the estimator out from rows of each validation fold and scores
    the whole rollout against the later rows of the same fold.

    Parameters
    ----------
    n_steps : int
        Steps of each rollout (>= 1).
    lead_steps : int, default=1
        Rows between a state and its next state in ``X``, as in
        :func:`make_vpt_scorer`.
    std : float, array-like of shape (n_state,) or None, default=None
        Climatological standard deviation of each state variable, the unit
        of the error; None takes it from the fold's true states.
    n_rollouts : int or None, default=100
        Rollouts per fold, from starts evenly spread over the valid ones;
        None rolls out from every valid row.
    target : {"next_state", "increment"}, default="next_state"
        What ``y`` holds: next states (for a
        :class:`~skdiffusion.surrogate.SurrogateForecaster` with its default
        ``target``) or increments (the ``y`` of the ``make_`` functions, for
        a forecaster with ``target="increment"`` or a bare regressor of
        increments, e.g. in ``StreamingRidgeCV(scoring=...)``).

    Returns
    -------
    scorer : callable
        ``scorer(estimator, X, y)`` returns minus the root-mean-squared
        normalised error over rollouts, leads ``1..n_steps`` and state
        variables (greater is better). An estimator with a
        ``forecast(X0, n_steps)`` method is rolled out with it; any other
        regressor is fed its own predictions (``x + predict(x)`` when
        ``target="increment"``) until a state leaves 10 standard deviations
        about the mean of the fold's states (the forecaster's default
        ``blowup_threshold``).

    See Also
    --------
    make_vpt_scorer : How long rollouts stay valid, as a scorer.
    make_nrmse_scorer : The one-step error as a scorer.

    Notes
    -----
    Rollouts start at rows followed by ``n_steps`` consecutive states in
    the fold (see :func:`make_vpt_scorer`), so folds must keep runs of rows
    together. A rollout that blows up (NaN from
    :meth:`~skdiffusion.surrogate.SurrogateForecaster.forecast`) is scored
    from its last finite state, held: at least as bad as the state it
    reached before leaving the forecaster's threshold, and never NaN.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import Ridge
    >>> from sklearn.model_selection import GridSearchCV, KFold
    >>> from skdiffusion.datasets import make_trajectories
    >>> from skdiffusion.metrics import make_rollout_scorer
    >>> from skdiffusion.surrogate import SurrogateForecaster
    >>> rotation = lambda x: x @ np.array([[0.0, 1.0], [-1.0, 0.0]])
    >>> data = make_trajectories(rotation, [1.0, 0.0], 600, dt=0.05)
    >>> search = GridSearchCV(
    ...     SurrogateForecaster(Ridge()), {"regressor__alpha": [1e-6, 10.0]},
    ...     scoring=make_rollout_scorer(20), cv=KFold(3),
    ... ).fit(data.X, data.X + data.y)
    >>> search.best_params_
    {'regressor__alpha': 1e-06}
    """
    return functools.partial(
        _rollout_score, n_steps=n_steps, lead_steps=lead_steps, std=std,
        n_rollouts=n_rollouts, target=target,
    )


def _check_samples(a, name, n_features=None, ensure_all_finite=True):
    a = check_array(
        a, ensure_all_finite=ensure_all_finite, input_name=name, dtype=np.float64
    )
    if n_features is not None and a.shape[1] != n_features:
        raise ValueError(
            f"{name} has {a.shape[1]} features, but the other sample has "
            f"{n_features}."
        )
    return a


def _histogram_cells(states, bins, range_):
    """Cell index of each state; states outside the box get all -1."""
    low, high = range_[:, 0], range_[:, 1]
    with np.errstate(invalid="ignore"):
        inside = np.all((states >= low) & (states <= high), axis=1)
        cells = np.floor((states - low) / (high - low) * bins)
    # The right edge belongs to the last bin, as in np.histogram.
    cells = np.minimum(np.nan_to_num(cells, nan=-1), bins - 1).astype(np.int64)
    cells[~inside] = -1
    return cells


@validate_params(
    {
        "X": ["array-like"],
        "Y": ["array-like"],
        "bins": [Interval(Integral, 1, None, closed="left"), "array-like"],
        "range": ["array-like"],
    },
    prefer_skip_nested_validation=True,
)
def hellinger_distance(X, Y, *, bins=70, range=(-3.5, 3.5)):
    """Hellinger distance between the histograms of two samples of states.

    Parameters
    ----------
    X : array-like of shape (n_samples_X, n_features)
        First sample, e.g. generated states or a forecast's long-run climate.
    Y : array-like of shape (n_samples_Y, n_features)
        Second sample, e.g. states of a reference trajectory.
    bins : int or array-like of shape (n_features,), default=70
        Number of equal bins per axis.
    range : array-like of shape (2,) or (n_features, 2), default=(-3.5, 3.5)
        Lower and upper edge of the histogram box, for all axes or per axis.
        The default is the paper's box on normalised states.

    Returns
    -------
    distance : float
        ``sqrt(1 - sum(sqrt(p * q)))`` in [0, 1], where ``p`` and ``q`` are the
        two normalised histograms: 0 for identical histograms, 1 for histograms
        with disjoint support.

    See Also
    --------
    nearest_neighbour_distances : A binning-free comparison of two samples.

    Notes
    -----
    States outside the box, and non-finite states (a forecast that blew up),
    are counted in one extra "outside" cell, so mass that leaves the box
    raises the distance instead of being dropped. Only occupied cells are
    stored, so any number of features works, although with many features
    nearly every state has a cell of its own and the distance tends to 1.

    Finn et al. (2024) use 70 bins per axis on [-3.5, 3.5] for three-dimensional
    histograms of normalised Lorenz 63 states.

    Examples
    --------
    >>> import numpy as np
    >>> from skdiffusion.metrics import hellinger_distance
    >>> X = np.random.default_rng(0).normal(size=(1000, 3))
    >>> hellinger_distance(X, X)
    0.0
    >>> hellinger_distance(0.1 * X - 2.0, 0.1 * X + 2.0)
    1.0
    """
    X = _check_samples(X, "X", ensure_all_finite=False)
    Y = _check_samples(Y, "Y", X.shape[1], ensure_all_finite=False)
    n_features = X.shape[1]
    bins = np.asarray(bins)
    if bins.ndim > 1 or bins.size not in (1, n_features):
        raise ValueError(
            f"bins must be an integer or have shape ({n_features},) (one per "
            f"feature of X), got shape {bins.shape}."
        )
    bins = np.broadcast_to(bins.reshape(-1), (n_features,))
    if bins.dtype.kind not in "iu" or np.any(bins < 1):
        raise ValueError(f"bins must be positive integers, got {bins}.")
    check_numeric(range, "range")
    range_ = np.asarray(range, dtype=float)
    if range_.shape not in {(2,), (n_features, 2)}:
        raise ValueError(
            f"range must have shape (2,) or ({n_features}, 2), got {range_.shape}."
        )
    range_ = np.broadcast_to(range_, (n_features, 2))
    if not np.all(np.isfinite(range_)) or np.any(range_[:, 1] <= range_[:, 0]):
        raise ValueError(f"range must be finite with low < high, got {range}.")

    cells = np.concatenate([_histogram_cells(A, bins, range_) for A in (X, Y)])
    if np.prod(bins, dtype=float) < 2**62:
        # One int64 per cell: sorting these is far faster than unique rows.
        inside = cells[:, 0] >= 0
        flat = np.full(len(cells), -1, dtype=np.int64)
        flat[inside] = np.ravel_multi_index(cells[inside].T, bins)
        _, cell_of_row = np.unique(flat, return_inverse=True)
    else:
        _, cell_of_row = np.unique(cells, axis=0, return_inverse=True)
    cell_of_row = cell_of_row.ravel()
    n_cells = cell_of_row.max() + 1
    p = np.bincount(cell_of_row[: len(X)], minlength=n_cells) / len(X)
    q = np.bincount(cell_of_row[len(X) :], minlength=n_cells) / len(Y)
    affinity = np.sum(np.sqrt(p * q))
    return float(np.sqrt(max(0.0, 1.0 - affinity)))


@validate_params(
    {
        "generated": ["array-like"],
        "reference": ["array-like"],
        "n_jobs": [Integral, None],
    },
    prefer_skip_nested_validation=True,
)
def nearest_neighbour_distances(generated, reference, *, n_jobs=None):
    """Mean squared nearest-neighbour distance in both directions.

    Parameters
    ----------
    generated : array-like of shape (n_generated, n_features)
        Generated states.
    reference : array-like of shape (n_reference, n_features)
        Reference states, e.g. a held-out trajectory.
    n_jobs : int or None, default=None
        Number of threads for the tree queries (``workers`` of
        :meth:`scipy.spatial.cKDTree.query`); None means 1, -1 all cores.

    Returns
    -------
    generated_to_reference : float
        Mean over generated states of the squared Euclidean distance to the
        closest reference state. Large when states are generated off the
        attractor (a quality measure).
    reference_to_generated : float
        Mean over reference states of the squared distance to the closest
        generated state. Large when parts of the attractor are never
        generated (a coverage measure).

    See Also
    --------
    hellinger_distance : Compares the densities rather than the supports.

    Notes
    -----
    Finn et al. (2024) report both directions to evaluate states generated
    by the diffusion model against a held-out Lorenz 63 trajectory. Both
    distances shrink as the samples grow, so compare samples of equal sizes.

    Examples
    --------
    >>> import numpy as np
    >>> from skdiffusion.metrics import nearest_neighbour_distances
    >>> generated = np.array([[0.0, 0.0], [1.0, 0.0]])
    >>> reference = np.array([[0.0, 0.0], [0.0, 2.0]])
    >>> nearest_neighbour_distances(generated, reference)
    (0.5, 2.0)
    """
    generated = _check_samples(generated, "generated")
    reference = _check_samples(reference, "reference", generated.shape[1])
    workers = 1 if n_jobs is None else n_jobs

    def mean_squared_distance(queries, points):
        distance, _ = cKDTree(points).query(queries, k=1, workers=workers)
        return float(np.mean(distance**2))

    return (
        mean_squared_distance(generated, reference),
        mean_squared_distance(reference, generated),
    )


@validate_params(
    {
        "generated": ["array-like"],
        "reference": ["array-like"],
        "quantiles": ["array-like"],
    },
    prefer_skip_nested_validation=True,
)
def extreme_fraction(generated, reference, *, quantiles=(0.01, 0.99)):
    """Fraction of generated values beyond the reference's extreme quantiles.

    Parameters
    ----------
    generated : array-like of shape (n_generated, n_features)
        Generated states.
    reference : array-like of shape (n_reference, n_features)
        Reference states.
    quantiles : array-like of shape (2,), default=(0.01, 0.99)
        Lower and upper quantile of the reference, per feature.

    Returns
    -------
    fraction : float
        Fraction of all values ``generated[i, j]`` below the lower or above the
        upper quantile of ``reference[:, j]``. A generator with the
        reference's distribution scores ``quantiles[0] + 1 - quantiles[1]``
        (0.02 by default); less means too few extremes, more too many.

    See Also
    --------
    hellinger_distance : Compares the whole distribution.

    Notes
    -----
    Finn et al. (2024) use the 1 % and 99 % quantiles of a held-out Lorenz 63
    trajectory to check that generated states keep its extremes.

    Examples
    --------
    >>> import numpy as np
    >>> from skdiffusion.metrics import extreme_fraction
    >>> reference = np.arange(101.0)[:, None]
    >>> extreme_fraction(np.array([[0.5], [50.0], [60.0], [99.5]]), reference)
    0.5
    """
    generated = _check_samples(generated, "generated")
    reference = _check_samples(reference, "reference", generated.shape[1])
    check_numeric(quantiles, "quantiles")
    quantiles = np.asarray(quantiles, dtype=float)
    if quantiles.shape != (2,) or not 0 <= quantiles[0] < quantiles[1] <= 1:
        raise ValueError(
            f"quantiles must be two increasing values in [0, 1], got {quantiles}."
        )
    low, high = np.quantile(reference, quantiles, axis=0)
    beyond = (generated < low) | (generated > high)
    return float(np.mean(beyond))
