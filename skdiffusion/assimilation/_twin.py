"""Twin experiments: cycle an assimilation method against known truths, and tune it."""

import copy
from numbers import Integral, Real

import numpy as np
from sklearn.model_selection import ParameterGrid
from sklearn.utils import Bunch, check_random_state
from sklearn.utils._param_validation import Interval, validate_params

from .._base import progress
from ._analysis import _check_array, check_obs_error_std, observation_matrix
from ._settings import check_settings

_SCORES = ("analysis_rmse", "background_rmse", "analysis_spread", "background_spread")


def _lorenz63_model(dt):
    from ..datasets import lorenz63, rk4

    def model(states, n_steps):
        return rk4(lorenz63, states, dt, n_steps, return_trajectory=False)

    return model


def _check_n_cycles(n_time, obs_every, n_burn_in, n_cycles):
    available = (n_time - 1) // obs_every - n_burn_in
    if n_cycles is None:
        n_cycles = available
    if not 1 <= n_cycles <= available:
        raise ValueError(
            f"n_cycles must be an int in [1, {available}] for truth trajectories of "
            f"{n_time} steps observed every {obs_every} steps after {n_burn_in} "
            f"burn-in cycles, got {n_cycles!r}."
        )
    return n_cycles


def _squared_scores(truth, background, analysis, b_var, a_var, scale):
    """Normalised squared errors and variances of one cycle, as in _SCORES.

    The one place where a cycle's states are put in the units of ``scale``;
    each row has shape (n_experiments,), means over the variables.
    """
    means = np.stack([analysis.mean(axis=1), background.mean(axis=1)])
    errors = ((means - truth) / scale) ** 2
    variances = np.stack([a_var, b_var]) / scale**2
    return np.concatenate([errors, variances]).mean(axis=2)


def _check_method(method):
    """Refuse anything but a method object, saying what one is."""
    if not (callable(getattr(method, "assimilate", None))
            and hasattr(type(method), "n_forecast_members")):
        raise ValueError(
            "method must be an assimilation method object with an `assimilate` "
            "method and an `n_forecast_members` property, such as EnOI(sampler), "
            "ThreeDVar(), OptimalInterpolation(mean, covariance), ETKF(n_members) "
            f"or LETKF(n_members); got {method!r}."
        )
    check_settings(method)


def _check_scale(scale, truth):
    """Positive per-variable scale; ``None`` is the standard deviation of ``truth``."""
    n_features = truth.shape[2]
    if scale is None:
        scale = truth.reshape(-1, n_features).std(axis=0)
        if np.any(scale <= 0):
            raise ValueError(
                "truth has a constant variable, so scale=None (its standard "
                "deviation) would divide by zero; pass scale."
            )
    scale = _check_array("scale", scale, (n_features,))
    if np.any(scale <= 0):
        raise ValueError(
            f"scale must be positive (it divides every error), got {scale.tolist()}."
        )
    return scale


@validate_params(
    {
        "method": "no_validation",
        "truth": ["array-like"],
        "obs_every": [Interval(Integral, 1, None, closed="left")],
        "obs_operator": [None, "array-like"],
        "obs_error_std": [Real, "array-like"],
        "n_burn_in": [Interval(Integral, 0, None, closed="left")],
        "n_cycles": [Interval(Integral, 1, None, closed="left"), None],
        "model": [callable, None],
        "dt": [Interval(Real, 0, None, closed="neither")],
        "scale": ["array-like", None],
        "initial_spread": [None, Interval(Real, 0, None, closed="left")],
        "return_series": ["boolean"],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    },
    prefer_skip_nested_validation=True,
)
def run_twin_experiment(
    method,
    truth,
    *,
    obs_every=10,
    obs_operator=None,
    obs_error_std=2.0,
    n_burn_in=100,
    n_cycles=None,
    model=None,
    dt=0.01,
    scale=None,
    initial_spread=None,
    return_series=False,
    random_state=None,
    verbose=False,
):
    """Cycle an assimilation method against known truths (a twin experiment).

    Every trajectory of ``truth`` is one independent experiment, and all of
    them run at once (vectorised over the first axis). The truth is observed
    every ``obs_every`` steps with Gaussian noise; the method starts from
    random climatological states (drawn from ``truth`` itself), forecasts
    with the perfect ``model`` between observations and assimilates each
    observation. After ``n_burn_in`` cycles, the next ``n_cycles`` are
    scored.

    Parameters
    ----------
    method : EnOI, ThreeDVar, OptimalInterpolation, ETKF or LETKF
        Any object with ``n_forecast_members`` and
        ``assimilate(background, observations, *, obs_operator, obs_error_std,
        random_state)``.
    truth : array-like of shape (n_experiments, n_time, n_features)
        True trajectories in model units, one state every ``dt``; needs
        ``n_time > obs_every * (n_burn_in + n_cycles)``.
    obs_every : int, default=10
        Steps between observations (10 steps of 0.01 is the paper's 0.1 MTU).
    obs_operator : None, list of int or array-like of shape (n_obs, n_features), \
            default=None
        Linear observation operator; ``None`` observes every variable.
    obs_error_std : float or array-like of shape (n_obs,), default=2.0
        Standard deviation of the observation noise, known to the method.
    n_burn_in : int, default=100
        Unscored cycles at the start.
    n_cycles : int, default=None
        Scored cycles; ``None`` uses every observation the truth allows.
    model : callable, default=None
        ``model(states, n_steps)`` advances states of shape
        ``(..., n_features)`` by ``n_steps`` steps; ``None`` is the Lorenz
        1963 system with RK4 and step ``dt``.
    dt : float, default=0.01
        Time step of the default model.
    scale : array-like of shape (n_features,), default=None
        Climatological scale that normalises errors and spreads, positive;
        ``None`` uses the standard deviation of ``truth``, and ones give
        model units.
    initial_spread : float, default=None
        ``None`` starts every member at a random state of ``truth`` (a
        climatological start, which the burn-in must forget); a float starts
        them at the first true state plus Gaussian noise of this standard
        deviation (model units), as DAPPER's benchmarks do (0.03).
    return_series : bool, default=False
        Also return the scored cycles' time series.
    random_state : int, RandomState instance or None, default=None
        Seeds the observation noise (drawn first, so the same seed gives every
        method the same observations), the initial states and the sampling.
    verbose : bool, default=False
        Show a progress bar on stderr.

    Returns
    -------
    result : :class:`~sklearn.utils.Bunch`
        With arrays of shape (n_experiments,), each a root mean square over
        the scored cycles and the variables of normalised quantities:

        analysis_rmse, background_rmse : ndarray
            Error of the analysis and of the background (forecast) mean.
        analysis_spread, background_spread : ndarray
            Square root of the mean variance the method assigns to them.

        and ``analysis_error`` of shape (n_experiments, n_cycles): the
        analysis RMSE over the variables at each scored cycle (its time mean
        is the statistic DAPPER reports as ``rmse.a``, with ``scale`` of
        ones for model units).

        and, if ``return_series``, arrays of shape
        (n_experiments, n_cycles, n_features) in model units: ``truth``,
        ``background``, ``analysis`` (means), ``analysis_variance``, and
        ``observations`` of shape (n_experiments, n_cycles, n_obs), and
        ``time`` of shape (n_cycles,), the observation times (step times
        ``dt``).

    See Also
    --------
    tune_twin_experiment : Grid search of a method's parameters.

    Notes
    -----
    Finn et al. (2024) observe all three Lorenz 1963 variables every 0.1 MTU
    with error std 2 (model units) and normalise RMSE and spread by the
    scale of the states (:data:`~skdiffusion.datasets.LORENZ63_SCALE`).

    Examples
    --------
    >>> from skdiffusion.assimilation import ETKF, run_twin_experiment
    >>> from skdiffusion.datasets import make_lorenz63
    >>> truth = make_lorenz63(4, 601, random_state=0).trajectories
    >>> result = run_twin_experiment(ETKF(12, inflation=1.1), truth, n_burn_in=20,
    ...                              random_state=0)
    >>> bool(result.analysis_rmse.mean() < 0.1)
    True
    """
    _check_method(method)
    truth = _check_array("truth", truth, ("n_experiments", "n_time", "n_features"))
    n_exp, n_time, n_features = truth.shape
    n_cycles = _check_n_cycles(n_time, obs_every, n_burn_in, n_cycles)
    H = observation_matrix(obs_operator, n_features)
    std = check_obs_error_std(obs_error_std, H.shape[0])
    scale = _check_scale(scale, truth)
    if model is None:
        if n_features != 3:
            raise ValueError("model=None is Lorenz 1963: truth must have 3 features.")
        model = _lorenz63_model(dt)
    n_members = method.n_forecast_members

    rng = check_random_state(random_state)
    n_total = n_burn_in + n_cycles
    obs_index = obs_every * np.arange(1, n_total + 1)
    observations = truth[:, obs_index] @ H.T
    observations += std * rng.standard_normal(observations.shape)
    if initial_spread is None:
        climate = truth.reshape(-1, n_features)
        state = climate[rng.randint(climate.shape[0], size=(n_exp, n_members))]
    else:
        noise = rng.standard_normal((n_exp, n_members, n_features))
        state = truth[:, :1] + initial_spread * noise

    sums = np.zeros((len(_SCORES), n_exp))
    analysis_error = np.empty((n_exp, n_cycles))
    series = {k: [] for k in ("background", "analysis", "analysis_variance")}
    desc = f"{type(method).__name__} twin experiment"
    with progress(n_total, desc=desc, verbose=verbose, unit="cycle") as bar:
        for cycle in range(n_total):
            background = model(state, obs_every)
            state, b_var, a_var = method.assimilate(
                background,
                observations[:, cycle],
                obs_operator=H,
                obs_error_std=std,
                random_state=rng,
            )
            if cycle >= n_burn_in:
                true = truth[:, obs_index[cycle]]
                squares = _squared_scores(true, background, state, b_var, a_var, scale)
                sums += squares
                analysis_error[:, cycle - n_burn_in] = np.sqrt(squares[0])
                if return_series:
                    series["background"].append(background.mean(axis=1))
                    series["analysis"].append(state.mean(axis=1))
                    series["analysis_variance"].append(a_var)
            bar.update()

    result = Bunch(**dict(zip(_SCORES, np.sqrt(sums / n_cycles), strict=True)))
    result.analysis_error = analysis_error
    if return_series:
        scored = obs_index[n_burn_in:]
        result.update({k: np.stack(v, axis=1) for k, v in series.items()})
        result.truth = truth[:, scored]
        result.observations = observations[:, n_burn_in:]
        result.time = scored * dt
    return result


@validate_params(
    {
        "method": "no_validation",
        "param_grid": [dict, list],
        "truth": ["array-like"],
        "verbose": ["verbose"],
    },
    prefer_skip_nested_validation=False,
)
def tune_twin_experiment(method, param_grid, truth, *, verbose=False, **kwargs):
    """Grid-search a method's parameters on twin experiments.

    Each point of :class:`~sklearn.model_selection.ParameterGrid` is set on a
    copy of ``method`` (nested parameters such as ``sampler__tau`` included)
    and run with :func:`run_twin_experiment` on ``truth``; the score is the
    analysis RMSE pooled over experiments (root of the mean square).

    Parameters
    ----------
    method : EnOI, ThreeDVar, OptimalInterpolation, ETKF or LETKF
        The method to tune; it is copied, never changed.
    param_grid : dict or list of dicts
        Parameter names mapped to lists of values, as in
        :class:`~sklearn.model_selection.GridSearchCV`.
    truth : array-like of shape (n_experiments, n_time, n_features)
        Tuning trajectories (the paper tunes on training trajectories and
        scores on separate test trajectories).
    verbose : bool, default=False
        Print one line per grid point.
    **kwargs
        Passed to :func:`run_twin_experiment`; pass an int ``random_state``
        so that every grid point sees the same observations.

    Returns
    -------
    result : :class:`~sklearn.utils.Bunch`
        best_params : dict
            The grid point with the lowest pooled analysis RMSE.
        best_method : object
            A copy of ``method`` with ``best_params`` set.
        best_score : float
            Its pooled analysis RMSE.
        results : dict of lists
            ``params`` and the pooled ``analysis_rmse``, ``background_rmse``,
            ``analysis_spread`` and ``background_spread`` of every grid point,
            in grid order (like ``GridSearchCV.cv_results_``).

    Notes
    -----
    ``copy.deepcopy`` rather than :func:`sklearn.base.clone` copies the
    method, so a fitted featurizer inside a :class:`DiffusionEnsemble` stays
    fitted.

    Examples
    --------
    >>> from skdiffusion.assimilation import ETKF, tune_twin_experiment
    >>> from skdiffusion.datasets import make_lorenz63
    >>> truth = make_lorenz63(4, 1001, random_state=0).trajectories
    >>> search = tune_twin_experiment(ETKF(3), {"inflation": [1.0, 1.4]}, truth,
    ...                               n_burn_in=20, random_state=0)
    >>> search.best_params
    {'inflation': 1.4}
    """
    _check_method(method)
    results = {"params": [], **{k: [] for k in _SCORES}}
    grid = ParameterGrid(param_grid)
    desc = f"{type(method).__name__} tuning"
    with progress(len(grid), desc=desc, verbose=verbose, unit="point", every=1) as bar:
        for params in grid:
            candidate = copy.deepcopy(method).set_params(**params)
            run = run_twin_experiment(candidate, truth, **kwargs)
            results["params"].append(params)
            for key in _SCORES:
                results[key].append(float(np.sqrt(np.mean(run[key] ** 2))))
            bar.set_postfix_str(
                f"{params}: analysis RMSE {results['analysis_rmse'][-1]:.4f}, "
                f"spread {results['analysis_spread'][-1]:.4f}"
            )
            bar.update()
    best = int(np.argmin(results["analysis_rmse"]))
    best_params = results["params"][best]
    return Bunch(
        best_params=best_params,
        best_method=copy.deepcopy(method).set_params(**best_params),
        best_score=results["analysis_rmse"][best],
        results=results,
    )


@validate_params(
    {"ensembles": ["array-like"], "truth": ["array-like"]},
    prefer_skip_nested_validation=True,
)
def rank_histogram(ensembles, truth):
    """Counts of the rank of the truth among ensemble members (Talagrand diagram).

    Parameters
    ----------
    ensembles : array-like of shape (n_samples, n_members, n_features)
        Ensembles, e.g. of a sampler around forecasts.
    truth : array-like of shape (n_samples, n_features)
        The true states.

    Returns
    -------
    counts : ndarray of shape (n_members + 1,)
        How often ``k`` members lie below the true value, over every sample
        and variable (ties broken at random). A flat histogram means a
        calibrated ensemble; a U shape, too little spread; a dome, too much.

    Examples
    --------
    >>> import numpy as np
    >>> from skdiffusion.assimilation import rank_histogram
    >>> rank_histogram([[[0.0], [1.0], [2.0]]], [[1.5]])
    array([0, 0, 1, 0])
    """
    ensembles = _check_array("ensembles", ensembles, ("n_samples", "n_members",
                                                      "n_features"))
    truth = _check_array("truth", truth, (ensembles.shape[0], ensembles.shape[2]))
    below = (ensembles < truth[:, None]).sum(axis=1)
    ties = (ensembles == truth[:, None]).sum(axis=1)
    if ties.any():
        rng = np.random.default_rng(0)
        below = below + rng.integers(0, ties + 1)
    return np.bincount(below.ravel(), minlength=ensembles.shape[1] + 1)
