"""Surrogate models: a regressor of the increment, rolled out as a forecast."""

import inspect
import warnings
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import Pipeline
from sklearn.utils._metadata_requests import (
    MetadataRouter,
    MethodMapping,
    _routing_enabled,
    process_routing,
)
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils._tags import get_tags
from sklearn.utils.validation import check_is_fitted

from ._base import check_unchanged, fit_context, progress
from ._validation import validate_data, validate_params
from .spatial import check_ring

__all__ = ["SurrogateForecaster"]


class SurrogateForecaster(RegressorMixin, BaseEstimator):
    """Next-state regressor that learns the increment, with autoregressive forecasts.

    Wraps any regressor (or pipeline) so that it learns the increment
    ``y - X`` of a dynamical system from a state ``X`` to the next state ``y``,
    in the spirit of :class:`~sklearn.compose.TransformedTargetRegressor`::

        regressor.fit(X, y - X)              # fit
        X + regressor.predict(X)             # predict: the next state
        forecast(X0, n_steps)                # predict, fed back n_steps times

    With ``target="increment"``, ``y`` is the increment itself (the ``y`` of
    the ``make_`` functions) and ``predict`` returns increments.

    Parameters
    ----------
    regressor : object, default=None
        Regressor of the increment, e.g. a
        ``Pipeline([("features", RFFFeaturizer()), ("head", Ridge())])``. It is
        cloned before fitting. None means
        :class:`~sklearn.linear_model.LinearRegression`.
    blowup_threshold : float or None, default=10.0
        A forecast state whose distance from the training mean exceeds
        ``blowup_threshold`` training standard deviations in any state
        variable counts as blown up, as does a non-finite state. None keeps
        only the non-finite test.
    target : {"next_state", "increment"}, default="next_state"
        What ``y`` holds in fit (and ``predict`` returns): the next states,
        or the increments ``next state - state`` (the ``y`` of
        :func:`~skdiffusion.datasets.make_lorenz63` and the other ``make_``
        functions). Forecasts are states either way. With
        ``"next_state"``, a ``y`` closer to 0 than to the state columns of
        ``X`` gets a ``UserWarning``: it looks like increments.
    ring : bool, default=False
        Whether the state is a field on a ring of sites with the same
        dynamics at every site (Lorenz 96) and ``regressor`` takes rings of
        any size, e.g. a pipeline ending in
        :class:`~skdiffusion.SiteWiseRegressor`. If True, ``y`` must have
        the width of ``X`` (every column is a site, none a constant input),
        ``predict`` and ``forecast`` take rings of any size, and the
        blow-up test uses one mean and one standard deviation for all
        sites.
    verbose : bool, default=False
        Print the progress of :meth:`forecast`.

    Attributes
    ----------
    regressor_ : object
        The fitted clone of ``regressor``.
    n_state_features_ : int
        Number of state variables: the columns of ``y``. They are the first
        ``n_state_features_`` columns of ``X``; any others are constant
        inputs (a ``UserWarning`` in fit says so).
    state_mean_ : ndarray of shape (`n_state_features_`,) or (1,)
        Mean of the training next states ``y``, per state variable, or over
        all sites (shape (1,)) with ``ring=True``.
    state_scale_ : ndarray of shape (`n_state_features_`,) or (1,)
        Standard deviation of the training next states (1 where it is 0),
        likewise; the unit of ``blowup_threshold``.
    n_features_in_ : int
        Number of columns of ``X``: state variables, then constant inputs.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during fit, when ``X`` has string column names.

    See Also
    --------
    sklearn.compose.TransformedTargetRegressor : The same idea with a
        transformation of ``y`` alone.
    skdiffusion.metrics.nrmse : Scores forecasts per lead time.
    skdiffusion.metrics.make_nrmse_scorer : The one-step score for searches.

    Notes
    -----
    By default ``y`` holds next *states*, so ``predict`` estimates ``y`` and
    every sklearn scorer applies. :func:`skdiffusion.datasets.make_lorenz63`
    returns increments as its ``y``: pass ``data.X + data.y``, or ``data.y``
    with ``target="increment"``.

    ``fit(X, y, groups=...)`` hands ``groups`` (e.g. the trajectory of each
    row) to the regressor, e.g. to a
    :class:`~skdiffusion.linear_model.StreamingRidgeCV` that holds out whole
    trajectories: with sklearn's metadata routing enabled, as routed
    (``set_fit_request(groups=True)`` on the consumer); without it, to the
    regressor or the last step of a pipeline when its ``fit`` takes
    ``groups``, and a ``ValueError`` otherwise.

    Any columns of ``X`` beyond the first ``n_state_features_`` are inputs
    that the dynamics do not change (a forcing, a parameter): ``forecast``
    keeps them at their initial values.

    With ``ring=True`` the regressor sees states of whatever ring size it
    is given; a model trained on 40 sites of Lorenz 96 forecasts 80 sites
    when its regressor is local and shared by all sites::

        SurrogateForecaster(
            make_pipeline(DiffusionFeaturizer(architecture="conv"),
                          SiteWiseRegressor(StreamingRidgeCV())),
            ring=True,
        )

    Finn et al. (2024) train surrogates of the Lorenz 63 increment over 0.1
    model time units (10 RK4 steps) and roll them out for 100 steps (10 MTU).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import Ridge
    >>> from skdiffusion.surrogate import SurrogateForecaster
    >>> X = np.random.default_rng(0).normal(size=(100, 2))
    >>> model = SurrogateForecaster(Ridge(alpha=1e-6)).fit(X, 0.9 * X)
    >>> model.forecast(X[:5], n_steps=10).shape
    (5, 11, 2)
    >>> np.round(model.forecast(np.ones((1, 2)), n_steps=2)[0, :, 0], 3)
    array([1.  , 0.9 , 0.81])
    """

    _parameter_constraints: dict = {
        "regressor": [HasMethods(["fit", "predict"]), None],
        "blowup_threshold": [Interval(Real, 0, None, closed="neither"), None],
        "target": [StrOptions({"next_state", "increment"})],
        "ring": ["boolean"],
        "verbose": ["verbose"],
    }

    def __init__(self, regressor=None, *, blowup_threshold=10.0,
                 target="next_state", ring=False, verbose=False):
        self.regressor = regressor
        self.blowup_threshold = blowup_threshold
        self.target = target
        self.ring = ring
        self.verbose = verbose

    def _get_regressor(self):
        return LinearRegression() if self.regressor is None else self.regressor

    # The regressor's parameters are validated by its own fit.
    @fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y, **fit_params):
        """Fit a clone of the regressor to the increment ``y - X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            States (plus any constant inputs after the state variables).
        y : array-like of shape (n_samples, n_state_features) or (n_samples,)
            Next states: the value of ``X[:, :n_state_features]`` one step
            later (or its increment, with ``target="increment"``). Must be
            finite.
        **fit_params : dict
            Passed to the regressor's ``fit`` (``groups`` too: see Notes).

        Returns
        -------
        self : SurrogateForecaster
            The fitted forecaster; unchanged if the fit raises.
        """
        dtype = [np.float64, np.float32]
        X, y = validate_data(
            self, X, y, multi_output=True, y_numeric=True, dtype=dtype,
            ensure_min_samples=2,
        )
        n_state = y.reshape(len(y), -1).shape[1]
        if n_state > X.shape[1]:
            raise ValueError(
                f"y has {n_state} columns but X only {X.shape[1]}: y must hold "
                f"the next value of the first columns of X (the state)."
            )
        if self.ring and n_state != X.shape[1]:
            raise ValueError(
                f"y has {n_state} columns and X {X.shape[1]}: with ring=True, y "
                "must hold the next value of every column of X (every column "
                "is a site of the ring)."
            )
        next_state, increment = self._state_and_increment(X, y)
        regressor = clone(self._get_regressor())
        routed = self._routed_fit_params(regressor, fit_params)
        regressor.fit(X, increment.reshape(y.shape), **routed)

        # by translation symmetry, one climatology for all sites of a ring
        moments = next_state.reshape(-1, 1) if self.ring else next_state
        scale = moments.std(axis=0)
        self.regressor_ = regressor
        self.n_state_features_ = n_state
        self.state_mean_ = moments.mean(axis=0)
        self.state_scale_ = np.where(scale > 0, scale, 1.0)
        self._y_ndim = y.ndim
        self._fitted_ring = self.ring
        self._fitted_target = self.target
        return self

    def _state_and_increment(self, X, y):
        """Next states and increments, shaped (n_samples, n_state), and checks."""
        Y = y.reshape(len(y), -1)
        n_state, state = Y.shape[1], X[:, : Y.shape[1]]
        if self.target == "increment":
            return state + Y, Y
        # y holds next states; increments (the make_ functions' y) are near 0
        to_state, to_zero = np.mean((Y - state) ** 2), np.mean(Y**2)
        if to_zero < to_state:
            warnings.warn(
                f"y looks like increments, not next states: its mean squared "
                f"distance to 0 ({to_zero:.3g}) is below that to the state "
                f"columns of X ({to_state:.3g}). Pass target='increment' if y "
                "holds increments (the y of the make_ functions), or the next "
                "states X + increment.",
                UserWarning,
                stacklevel=6,
            )
        if n_state < X.shape[1] and not self.ring:
            warnings.warn(
                f"y has {n_state} columns and X {X.shape[1]}: the last "
                f"{X.shape[1] - n_state} columns of X are taken as constant "
                "inputs (a forcing, a parameter) that forecast keeps at their "
                "initial values. If they are state variables, give y all "
                "columns.",
                UserWarning,
                stacklevel=6,
            )
        return Y, Y - state

    def _routed_fit_params(self, regressor, fit_params):
        """The regressor's fit parameters: metadata routing, else ``groups``
        to the regressor (or a pipeline's last step) whose fit takes them."""
        if _routing_enabled():
            return process_routing(self, "fit", **fit_params).regressor.fit
        if "groups" not in fit_params:
            return fit_params
        pipeline = isinstance(regressor, Pipeline)
        consumer = regressor.steps[-1][1] if pipeline else regressor
        if "groups" not in inspect.signature(consumer.fit).parameters:
            raise ValueError(
                f"groups were given, but {type(consumer).__name__}.fit takes no "
                "groups; use a regressor that does (StreamingRidgeCV holds out "
                "whole groups), or enable sklearn's metadata routing."
            )
        params = dict(fit_params)
        if pipeline:
            params[f"{regressor.steps[-1][0]}__groups"] = params.pop("groups")
        return params

    def get_metadata_routing(self):
        """Route fit's metadata to the regressor's fit (sklearn's routing).

        Returns
        -------
        routing : MetadataRouter
            The routing of this forecaster.
        """
        return MetadataRouter(owner=self).add(
            regressor=self._get_regressor(),
            method_mapping=MethodMapping().add(caller="fit", callee="fit"),
        )

    def _check_states(self, X, use):
        """Validated states: of the fitted width, or a ring of any size."""
        check_is_fitted(self)
        fitted = {"ring": self._fitted_ring, "target": self._fitted_target}
        check_unchanged(self, fitted, use)
        if self.ring:
            return check_ring(self, X)
        return validate_data(self, X, reset=False, dtype=[np.float64, np.float32])

    def _n_state(self, X):
        """Number of state columns of X: all of a ring's, else as in fit."""
        return X.shape[1] if self.ring else self.n_state_features_

    def _step(self, X):
        """The next state of each row of X (all columns, inputs unchanged)."""
        increment = self.regressor_.predict(X)
        n_state = self._n_state(X)
        next_state = np.array(X, dtype=np.result_type(X, increment))
        next_state[:, :n_state] += np.reshape(increment, (len(X), n_state))
        return next_state

    def predict(self, X):
        """Predict the next state of each state in ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            States, followed by any constant inputs, as in fit; with
            ``ring=True``, fields on a ring of any size.

        Returns
        -------
        y_pred : ndarray of shape (n_samples, `n_state_features_`) or (n_samples,)
            ``X[:, :n_state_features_]`` plus the predicted increment (the
            increment alone with ``target="increment"``), with the
            dimensions of the ``y`` seen in fit; with ``ring=True``, one
            column per site of ``X``.
        """
        X = self._check_states(X, "predict")
        n_state = self._n_state(X)
        predicted = self._step(X)[:, :n_state]
        if self._fitted_target == "increment":
            predicted = predicted - X[:, :n_state]
        one_column = self._y_ndim == 1 and predicted.shape[1] == 1
        return predicted[:, 0] if one_column else predicted

    def _blown_up(self, states):
        """Rows of ``states`` that are non-finite or beyond the threshold."""
        bad = ~np.all(np.isfinite(states), axis=1)
        if self.blowup_threshold is not None:
            deviation = np.abs(states[:, : self._n_state(states)] - self.state_mean_)
            with np.errstate(invalid="ignore"):
                beyond = deviation > self.blowup_threshold * self.state_scale_
            bad |= np.any(beyond, axis=1)
        return bad

    @validate_params(
        {"X0": ["array-like"], "n_steps": [Interval(Integral, 1, None, closed="left")]},
        prefer_skip_nested_validation=True,
    )
    def forecast(self, X0, n_steps):
        """Roll the model out autoregressively from initial states.

        Parameters
        ----------
        X0 : array-like of shape (n_samples, n_features)
            Initial states, finite; with ``ring=True``, fields on a ring of
            any size.
        n_steps : int
            Number of steps to predict (>= 1).

        Returns
        -------
        trajectories : ndarray of shape (n_samples, n_steps + 1, n_features)
            ``trajectories[:, 0]`` is ``X0`` and ``trajectories[:, i]`` the
            state after ``i`` steps. A trajectory that blew up (see
            ``blowup_threshold``) is NaN from its first bad step on, and a
            ``RuntimeWarning`` says how many did; the others go on.
        """
        X0 = self._check_states(X0, "forecast")

        trajectories = np.full((len(X0), n_steps + 1, X0.shape[1]), np.nan, X0.dtype)
        trajectories[:, 0] = X0
        alive = np.arange(len(X0))
        desc = f"{type(self).__name__}.forecast"
        with progress(n_steps, desc=desc, verbose=self.verbose, unit="step") as bar:
            for step in range(1, n_steps + 1):
                with np.errstate(over="ignore", invalid="ignore"):
                    states = self._step(trajectories[alive, step - 1])
                ok = ~self._blown_up(states)
                trajectories[alive[ok], step] = states[ok]
                alive = alive[ok]
                bar.set_postfix_str(f"{alive.size} running", refresh=False)
                bar.update()
                if not alive.size:
                    break

        n_blown_up = len(X0) - alive.size
        if n_blown_up:
            warnings.warn(
                f"{n_blown_up} of {len(X0)} forecast trajectories blew up (became "
                f"non-finite or left {self.blowup_threshold} training standard "
                f"deviations around the training mean); they are NaN from that "
                f"step on.",
                RuntimeWarning,
                stacklevel=2,
            )
        return trajectories

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        regressor_tags = get_tags(self._get_regressor())
        tags.target_tags.multi_output = regressor_tags.target_tags.multi_output
        return tags
