"""Ridge regression whose normal equations are accumulated chunk by chunk."""

import functools
import math
import operator
import sys
import warnings
from numbers import Integral, Real

import numpy as np
from scipy import linalg
from scipy.linalg import blas
from sklearn.base import BaseEstimator, MultiOutputMixin, RegressorMixin, clone
from sklearn.model_selection import GroupShuffleSplit, check_cv
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import HasMethods, Interval
from sklearn.utils.validation import (
    check_array,
    check_consistent_length,
    check_is_fitted,
)
from threadpoolctl import threadpool_limits

from ._base import fit_context, progress, row_chunks
from ._validation import check_finite, check_numeric, validate_data

__all__ = ["StreamingRidge", "StreamingRidgeCV"]


class _NormalEquations:
    """Sums that define a least-squares problem, accumulated in float64.

    Rows are shifted before the products are taken (by the mean of the first
    chunk, see :meth:`centred_on`), so that centring at the end does not
    subtract two large numbers. Only the upper triangle of ``gram`` is kept
    (``dsyrk`` halves the work). ``update`` adds rows in place, so it is only
    called on equations the running ``fit`` created; ``a + b`` builds new
    arrays, which leaves the equations of a fitted estimator untouched.
    """

    def __init__(self, shift_x, shift_y):
        self.n_samples = 0
        self.shift_x, self.shift_y = shift_x, shift_y
        self.sum_x = np.zeros(len(shift_x))
        self.sum_y = np.zeros(len(shift_y))
        self.gram = np.zeros((len(shift_x), len(shift_x)), order="F")
        self.cross = np.zeros((len(shift_x), len(shift_y)))

    @classmethod
    def centred_on(cls, features, targets, center):
        """Empty equations shifted by the mean of these rows (or by 0)."""
        if center:
            return cls(features.mean(axis=0), targets.mean(axis=0))
        return cls(np.zeros(features.shape[1]), np.zeros(targets.shape[1]))

    def empty_like(self):
        """Empty equations with the same shifts, so that they can be added."""
        return type(self)(self.shift_x, self.shift_y)

    def update(self, features, targets):
        """Add rows to these equations, in place."""
        if len(features) == 0:
            return
        features = np.asarray(features, dtype=np.float64) - self.shift_x
        targets = np.asarray(targets, dtype=np.float64) - self.shift_y
        self.n_samples += len(features)
        self.sum_x += features.sum(axis=0)
        self.sum_y += targets.sum(axis=0)
        # features.T is Fortran-ordered, so dsyrk reads it without a copy.
        self.gram = blas.dsyrk(
            1.0, features.T, beta=1.0, c=self.gram, trans=0, lower=0, overwrite_c=1
        )
        self.cross += features.T @ targets

    def __add__(self, other):
        """The equations of the rows of both (same shifts), in new arrays."""
        total = self.empty_like()
        total.n_samples = self.n_samples + other.n_samples
        total.sum_x = self.sum_x + other.sum_x
        total.sum_y = self.sum_y + other.sum_y
        total.gram = np.asfortranarray(self.gram + other.gram)
        total.cross = self.cross + other.cross
        return total

    def _system(self, fit_intercept, standardize):
        """Return (gram, cross, scale, mean_x, mean_y) of the penalised problem."""
        if not (np.isfinite(self.gram).all() and np.isfinite(self.cross).all()):
            raise ValueError(
                "The normal equations are not finite: the features (X, or the "
                "transformer's output) or y hold NaN, or values too large to "
                "square in float64 (beyond about 1e154); rescale them, e.g. "
                "standardise X."
            )
        n = self.n_samples
        gram = np.triu(self.gram) + np.triu(self.gram, 1).T
        mean_x = self.sum_x / n
        mean_y = self.sum_y / n
        # Second moments about the mean, used for the scale in any case.
        centered = gram - n * np.outer(mean_x, mean_x)
        if fit_intercept:
            gram, cross = centered, self.cross - n * np.outer(mean_x, mean_y)
        else:
            gram, cross = gram, self.cross
        if standardize:
            var = np.clip(np.diag(centered) / n, 0, None)
            # Constant features keep scale 1, as in StandardScaler.
            eps, mean = np.finfo(np.float64).eps, mean_x + self.shift_x
            constant = var <= n * eps * var + (n * mean * eps) ** 2
            scale = np.where(constant, 1.0, np.sqrt(var))
        else:
            scale = np.ones(len(mean_x))
        system = gram / np.outer(scale, scale)
        return system, cross / scale[:, None], scale, mean_x, mean_y

    def _unscale(self, coef, scale, mean_x, mean_y, fit_intercept):
        """Coefficients in the units of the features, and the intercept."""
        coef = coef / scale[:, None]
        if fit_intercept:
            intercept = mean_y + self.shift_y - (mean_x + self.shift_x) @ coef
        else:
            intercept = np.zeros(coef.shape[1])
        return coef, intercept

    def solve(self, alpha, fit_intercept, standardize):
        """Return (coef of shape (n_features, n_targets), intercept)."""
        system, rhs, *rest = self._system(fit_intercept, standardize)
        system.flat[:: len(system) + 1] += alpha
        try:
            coef = linalg.cho_solve(linalg.cho_factor(system), rhs)
        except linalg.LinAlgError:
            warnings.warn(
                "The ridge system is singular (alpha=0 with collinear features?); "
                "using the least-squares solution instead.",
                linalg.LinAlgWarning,
                stacklevel=3,
            )
            coef = linalg.lstsq(system, rhs)[0]
        return self._unscale(coef, *rest, fit_intercept)

    @staticmethod
    def _eigh(system):
        # One BLAS thread: LAPACK's tridiagonal reduction syncs its threads
        # once per column, and on busy cores those syncs dominate. Measured
        # (benchmarks/bench_ridge_path.py, 1536 features, 2 cores): next to
        # other BLAS work 2.5 s wall on one thread against 17.7 s on two;
        # idle 1.3 s against 0.9 s.
        with threadpool_limits(1, user_api="blas"):
            return linalg.eigh(system)

    def solve_path(self, alphas, fit_intercept, standardize):
        """Return a list of (coef, intercept), one per penalty in ``alphas``.

        One eigendecomposition serves every penalty. Unlike a Cholesky
        factorisation it cannot fail on a nearly singular system, which
        small penalties on many correlated features give: eigenvalues that
        rounding made negative count as 0, and for ``alpha=0`` those below
        the rounding level are dropped (the least-squares solution).
        """
        system, rhs, *rest = self._system(fit_intercept, standardize)
        eigenvalues, vectors = self._eigh(system)
        eigenvalues = np.clip(eigenvalues, 0, None)
        rounding = len(system) * np.finfo(np.float64).eps * eigenvalues[-1]
        projected = vectors.T @ rhs
        path = []
        for alpha in alphas:
            shrink = eigenvalues + alpha
            keep = shrink > (rounding if alpha == 0 else 0)
            inverse = np.divide(1.0, shrink, out=np.zeros_like(shrink), where=keep)
            coef = vectors @ (projected * inverse[:, None])
            path.append(self._unscale(coef, *rest, fit_intercept))
        return path


class _StreamingRidgeBase(MultiOutputMixin, RegressorMixin, BaseEstimator):
    """Chunked transform, accumulation and prediction shared by the ridges."""

    def _validate_xy(self, X, y, reset):
        dtype = [np.float64, np.float32]
        return validate_data(
            self, X, y, reset=reset, multi_output=True, y_numeric=True, dtype=dtype
        )

    def _fit_transformer(self, X, y):
        if self.transformer is None:
            return None
        return clone(self.transformer).fit(X, y)

    def _chunks(self, transformer, X, desc=None):
        """Yield (rows, features) over chunks of ``chunk_size`` rows of X.

        With ``desc``, the progress over chunks is shown when ``verbose``.
        """
        n_chunks = -(-len(X) // self.chunk_size)
        verbose = self.verbose if desc else False
        with progress(n_chunks, desc=desc, verbose=verbose, unit="chunk") as bar:
            for rows in row_chunks(len(X), self.chunk_size):
                features = X[rows]
                if transformer is not None:
                    features = transformer.transform(features)
                yield rows, features
                bar.update()

    def _accumulate(self, caller, transformer, X, Y, *, like=None, parts=None,
                    n_parts=1):
        """Normal equations of the rows of (X, Y), accumulated chunk by chunk.

        ``caller`` ("fit" or "partial_fit") names the progress shown.

        They are shifted like the equations ``like`` if given (so that the
        two can be added), else by the mean of the first chunk. Returns a
        list of ``n_parts`` equations, all with the same shift: those of the
        rows whose label in ``parts`` (an integer array) is 0, 1, ...; with
        ``parts=None``, one for all rows.
        """
        equations = None
        desc = f"{type(self).__name__}.{caller}"
        for rows, features in self._chunks(transformer, X, desc):
            if equations is None:
                if like is None:
                    like = _NormalEquations.centred_on(
                        features, Y[rows], self.fit_intercept
                    )
                equations = [like.empty_like() for _ in range(n_parts)]
            if parts is None:
                equations[0].update(features, Y[rows])
                continue
            for part, part_equations in enumerate(equations):
                mask = parts[rows] == part
                part_equations.update(features[mask], Y[rows][mask])
        return equations

    def _set_solution(self, transformer, n_samples, y_ndim, coef, intercept):
        self.transformer_ = transformer
        self.n_samples_seen_ = n_samples
        self._y_ndim = y_ndim
        if y_ndim == 1:
            self.coef_, self.intercept_ = coef[:, 0], float(intercept[0])
        else:
            self.coef_, self.intercept_ = coef.T, intercept

    def predict(self, X):
        """Predict the targets of ``X``, transforming it chunk by chunk.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data, as in fit: the transformer's input (or the features).

        Returns
        -------
        y_pred : ndarray of shape (n_samples,) or (n_samples, n_targets)
            ``features @ coef_.T + intercept_``, with the dimensions of the
            ``y`` seen in fit.
        """
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
        coef = np.reshape(self.coef_, (-1, np.shape(self.coef_)[-1]))
        y_pred = np.empty((len(X), len(coef)))
        for rows, features in self._chunks(self.transformer_, X):
            y_pred[rows] = features @ coef.T
        y_pred += self.intercept_
        check_finite(y_pred, "StreamingRidge.predict(X)", (
            "X (or its features) holds values too large for float64 products "
            "with the coefficients; are they in the units of the training data?"
        ))
        return y_pred[:, 0] if self._y_ndim == 1 else y_pred


class StreamingRidge(_StreamingRidgeBase):
    """Ridge regression fitted chunk by chunk, optionally on transformed features.

    Minimises ``||y - X w - b||^2 + alpha ||w||^2`` like
    :class:`~sklearn.linear_model.Ridge`, but accumulates the normal equations
    ``X^T X``, ``X^T y`` and the sums needed for centring over chunks of
    ``chunk_size`` rows, in float64. With a ``transformer`` the features of
    each chunk are computed, used and dropped, so the full feature matrix is
    never held: memory is ``O(chunk_size * n_features_out + n_features_out^2)``
    whatever the number of samples.

    Parameters
    ----------
    alpha : float, default=1.0
        Regularisation strength (>= 0), as in
        :class:`~sklearn.linear_model.Ridge`; on standardised features when
        ``standardize=True``.
    transformer : object or None, default=None
        Transformer whose output are the features, e.g. an
        :class:`~skdiffusion.featurizers.RFFFeaturizer` or
        :class:`~skdiffusion.featurizers.DiffusionFeaturizer`. ``fit`` fits a
        clone of it on ``X`` (without transforming all of ``X`` at once);
        wrap an already fitted transformer in
        :class:`~sklearn.frozen.FrozenEstimator` to use it as it is.
        ``partial_fit`` fits the clone on the first batch only, so give it a
        frozen transformer unless fitting on one batch is enough. None uses
        ``X`` itself.
    chunk_size : int, default=4096
        Number of rows transformed and accumulated at a time, in ``fit`` and
        ``predict``.
    fit_intercept : bool, default=True
        Whether to fit an intercept (the features and targets are centred).
    standardize : bool, default=False
        Divide each feature by its standard deviation before the penalty is
        applied, as ``Pipeline([StandardScaler(), Ridge()])`` does; ``coef_``
        stays in the units of the unscaled features.
    verbose : bool, default=False
        Print the progress over chunks.

    Attributes
    ----------
    coef_ : ndarray of shape (n_features_out,) or (n_targets, n_features_out)
        Weights of the features (the transformer's output, or ``X``).
    intercept_ : float or ndarray of shape (n_targets,)
        Intercept, 0 when ``fit_intercept=False``.
    transformer_ : object or None
        The fitted clone of ``transformer``.
    n_samples_seen_ : int
        Number of rows accumulated so far.
    n_features_in_ : int
        Number of columns of ``X`` (the transformer's input) seen during fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during fit, when ``X`` has string column names.

    See Also
    --------
    sklearn.linear_model.Ridge : The same estimator on data held in memory.
    sklearn.frozen.FrozenEstimator : Use a pre-fitted transformer unchanged.

    Notes
    -----
    Finn et al. (2024) fit ridge heads (lambda 1e-4 on standardised features)
    on the diffusion features of 1.6e7 Lorenz 63 states: with 1536 features
    that matrix would take 98 GB in float32, the normal equations 19 MB.

    The features are shifted by the mean of the first chunk before their
    products are accumulated, which keeps the centring accurate when the
    features have large means. Solving costs ``O(n_features_out^3)`` at the
    end of ``fit`` and of every ``partial_fit``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import Ridge
    >>> from skdiffusion import RFFFeaturizer
    >>> from skdiffusion.linear_model import StreamingRidge
    >>> X = np.random.default_rng(0).normal(size=(1000, 3))
    >>> y = np.sin(X).sum(axis=1)
    >>> streaming = StreamingRidge(alpha=0.1, chunk_size=128).fit(X, y)
    >>> np.allclose(streaming.coef_, Ridge(alpha=0.1).fit(X, y).coef_)
    True
    >>> head = StreamingRidge(1e-3, transformer=RFFFeaturizer(256, random_state=0))
    >>> head.fit(X, y).coef_.shape
    (256,)
    """

    _parameter_constraints: dict = {
        "alpha": [Interval(Real, 0, None, closed="left")],
        "transformer": [HasMethods(["fit", "transform"]), None],
        "chunk_size": [Interval(Integral, 1, None, closed="left")],
        "fit_intercept": ["boolean"],
        "standardize": ["boolean"],
        "verbose": ["verbose"],
    }

    def __init__(self, alpha=1.0, *, transformer=None, chunk_size=4096,
                 fit_intercept=True, standardize=False, verbose=False):
        self.alpha = alpha
        self.transformer = transformer
        self.chunk_size = chunk_size
        self.fit_intercept = fit_intercept
        self.standardize = standardize
        self.verbose = verbose

    def _solve(self, transformer, equations, y_ndim):
        coef, intercept = equations.solve(
            self.alpha, self.fit_intercept, self.standardize
        )
        # kept for partial_fit, which adds the next batch to them
        self._equations = equations
        self._set_solution(transformer, equations.n_samples, y_ndim, coef, intercept)

    # The transformer's parameters are validated by its own fit.
    @fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y):
        """Fit the ridge regression, accumulating over chunks of ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data (the transformer's input).
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
            Targets, finite.

        Returns
        -------
        self : StreamingRidge
            The fitted estimator; unchanged if the fit raises.
        """
        X, y = self._validate_xy(X, y, reset=True)
        transformer = self._fit_transformer(X, y)
        [equations] = self._accumulate("fit", transformer, X, y.reshape(len(y), -1))
        self._solve(transformer, equations, y.ndim)
        return self

    @fit_context(prefer_skip_nested_validation=False)
    def partial_fit(self, X, y):
        """Add a batch of samples to the normal equations and solve again.

        The batch is accumulated into new arrays and added to the earlier
        batches' sums, so a batch that fails leaves the estimator as it was.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            A batch of training data.
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
            Its targets, with the same number of targets on every call.

        Returns
        -------
        self : StreamingRidge
            The updated estimator.
        """
        first_call = not hasattr(self, "_equations")
        X, y = self._validate_xy(X, y, reset=first_call)
        Y = y.reshape(len(y), -1)
        if first_call:
            transformer, previous = self._fit_transformer(X, y), None
        else:
            transformer, previous = self.transformer_, self._equations
            if y.ndim != self._y_ndim or Y.shape[1] != len(previous.sum_y):
                raise ValueError(
                    f"y has shape {y.shape} but earlier batches had "
                    f"{len(previous.sum_y)} target(s) with ndim {self._y_ndim}."
                )
        [batch] = self._accumulate("partial_fit", transformer, X, Y, like=previous)
        equations = batch if previous is None else previous + batch
        self._solve(transformer, equations, y.ndim)
        return self


class StreamingRidgeCV(_StreamingRidgeBase):
    """Streaming ridge regression that chooses its penalty on held-out rows.

    Like :class:`StreamingRidge`, it accumulates the normal equations chunk by
    chunk (with a ``transformer``, without holding the feature matrix). The
    rows of each validation fold are accumulated apart (by default one fold:
    a random ``validation_fraction`` of the rows, or of the trajectories
    when ``groups`` are given); the ridge solution of the other rows is
    computed for every penalty in ``alphas`` (one eigendecomposition for
    all), scored on the fold, and the best penalty is then refitted on all
    rows. The held-out rows are transformed a second time to be scored, so a
    fit costs ``1 + validation_fraction`` transforms of ``X`` (2 with ``cv``
    folds covering every row).

    Parameters
    ----------
    alphas : array-like of float, default=(1e-14, 1e-13, ..., 1e2)
        Penalties to try (>= 0), as in :class:`~sklearn.linear_model.RidgeCV`;
        on standardised features when ``standardize=True``. The grid reaches
        far down because on the correlated features of a diffusion
        featurizer the best penalties lie near 1e-9 to 1e-12; one
        eigendecomposition serves them all, so a long grid costs little.
    transformer : object or None, default=None
        Transformer whose output are the features; see :class:`StreamingRidge`.
    validation_fraction : float, default=0.1
        Fraction of the rows (drawn at random) held out to choose the
        penalty when ``cv=None``; at least one row is held out and at least
        one is kept. With ``groups`` in fit, the fraction of the groups
        (whole trajectories) held out, as
        :class:`~sklearn.model_selection.GroupShuffleSplit` draws them.
    cv : int, cross-validation generator, iterable or None, default=None
        Folds to score the penalties on instead of one held-out fraction,
        as in :class:`~sklearn.linear_model.RidgeCV`: an int is that many
        :class:`~sklearn.model_selection.KFold` folds (contiguous blocks of
        rows), a splitter such as
        :class:`~sklearn.model_selection.GroupKFold` receives the ``groups``
        of fit. Each split's training rows must be all rows outside its test
        rows, and test rows may not repeat (KFold, GroupKFold,
        LeaveOneGroupOut, PredefinedSplit), since the equations of a fold are
        those of all rows less the fold's; ``TimeSeriesSplit`` is refused.
    scoring : callable or None, default=None
        How a penalty is scored on a fold: None is minus the mean squared
        error; a scorer ``scoring(estimator, X_fold, y_fold)`` (greater is
        better) receives a :class:`StreamingRidge` fitted with the penalty
        on the other rows, e.g.
        ``skdiffusion.metrics.make_rollout_scorer(10, target="increment")``
        to choose the penalty by the error of 10-step rollouts of a ridge on
        the increment of states (with ``transformer`` the featurizer, ``X``
        the states, and folds that keep runs of rows: ``groups`` or ``cv``).
        It costs one scorer call per penalty and fold.
    chunk_size : int, default=4096
        Number of rows transformed and accumulated at a time.
    fit_intercept : bool, default=True
        Whether to fit an intercept (the features and targets are centred).
    standardize : bool, default=False
        Penalise standardised features, as in :class:`StreamingRidge`.
    random_state : int, RandomState instance or None, default=None
        Draws the held-out rows.
    verbose : bool, default=False
        Print the progress over chunks and the validation error per penalty.

    Attributes
    ----------
    alpha_ : float
        The chosen penalty: the best validation score, the larger penalty on
        a tie. A ``UserWarning`` says when it is the smallest or the largest
        of ``alphas`` and better than its neighbour: the best penalty may
        lie beyond the grid.
    score_path_ : ndarray of shape (n_alphas,)
        Validation score per penalty in ``alphas``: minus the mean squared
        error pooled over the held-out rows and targets (``scoring=None``),
        else the mean of ``scoring`` over the folds.
    mse_path_ : ndarray of shape (n_alphas,)
        Mean squared error on the held-out rows (over rows and targets) of
        the fit to the other rows, per penalty; only with ``scoring=None``.
    coef_ : ndarray of shape (n_features_out,) or (n_targets, n_features_out)
        Weights of the features, refitted on all rows with ``alpha_``.
    intercept_ : float or ndarray of shape (n_targets,)
        Intercept, 0 when ``fit_intercept=False``.
    transformer_ : object or None
        The fitted clone of ``transformer``.
    n_samples_seen_ : int
        Number of rows fitted (held-out rows included).
    n_features_in_ : int
        Number of columns of ``X`` seen during fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during fit, when ``X`` has string column names.

    See Also
    --------
    StreamingRidge : The same model with a given penalty; has ``partial_fit``.
    sklearn.linear_model.RidgeCV : Leave-one-out (or k-fold) choice of the
        penalty on data held in memory.

    Notes
    -----
    Why a held-out set rather than the leave-one-out (generalised
    cross-validation) that :class:`~sklearn.linear_model.RidgeCV` uses by
    default: it needs only the normal equations, so it streams, and on the
    1536 strongly correlated diffusion features of Lorenz 63 states the
    generalised cross-validation of ``RidgeCV`` chose a penalty of 1e-5
    where held-out rows chose 1e-9 to 1e-10, with one-step test errors 2 to
    2.5 times lower (``benchmarks/featurizer_quality.py``, heads ``ridgecv``
    and ``holdout``; see the user guide's training recipe page).

    Rows of a trajectory that are close in time are alike, so a random
    held-out row has near neighbours among the fitted ones and the
    validation error is optimistic, which favours small penalties. Pass the
    trajectory of each row as ``groups`` (the ``groups`` of the ``make_``
    functions and :func:`~skdiffusion.datasets.pairs_from_trajectories`) to
    hold out whole trajectories, and a rollout scorer to choose the penalty
    on what a surrogate is used for (see the user guide on model
    selection).

    Examples
    --------
    >>> import numpy as np
    >>> from skdiffusion.linear_model import StreamingRidgeCV
    >>> X = np.random.default_rng(0).normal(size=(1000, 3))
    >>> y = X @ [1.0, 2.0, 3.0] + 0.01 * np.random.default_rng(1).normal(size=1000)
    >>> model = StreamingRidgeCV(alphas=[1e-3, 1e3], random_state=0).fit(X, y)
    >>> float(model.alpha_)
    0.001
    >>> np.round(model.coef_, 2)
    array([1., 2., 3.])
    """

    _parameter_constraints: dict = {
        "alphas": ["array-like"],
        "transformer": [HasMethods(["fit", "transform"]), None],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "cv": ["cv_object"],
        "scoring": [callable, None],
        "chunk_size": [Interval(Integral, 1, None, closed="left")],
        "fit_intercept": ["boolean"],
        "standardize": ["boolean"],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(self, alphas=tuple(10.0**k for k in range(-14, 3)), *,
                 transformer=None, validation_fraction=0.1, cv=None, scoring=None,
                 chunk_size=4096, fit_intercept=True, standardize=False,
                 random_state=None, verbose=False):
        self.alphas = alphas
        self.transformer = transformer
        self.validation_fraction = validation_fraction
        self.cv = cv
        self.scoring = scoring
        self.chunk_size = chunk_size
        self.fit_intercept = fit_intercept
        self.standardize = standardize
        self.random_state = random_state
        self.verbose = verbose

    def _check_alphas(self):
        check_numeric(self.alphas, "alphas")
        alphas = np.asarray(self.alphas, dtype=np.float64)
        if alphas.ndim > 1:  # a nested list is a mistake, not a list of penalties
            alphas = np.array([])
        alphas = alphas.reshape(-1)
        if alphas.size == 0 or not np.all(np.isfinite(alphas)) or np.any(alphas < 0):
            raise ValueError(
                f"alphas must be a non-empty list of finite penalties >= 0, "
                f"got {self.alphas!r}."
            )
        return alphas

    def _held_out(self, n_samples):
        """Indices of the held-out rows of the default split."""
        n_held_out = math.ceil(self.validation_fraction * n_samples)
        if n_samples - n_held_out < 1:
            raise ValueError(
                f"validation_fraction={self.validation_fraction} of "
                f"{n_samples} samples leaves no row to fit; lower it or pass "
                "more samples."
            )
        rng = check_random_state(self.random_state)
        return rng.choice(n_samples, n_held_out, replace=False)

    def _test_folds(self, X, y, groups):
        """Row labels: the fold whose test rows hold the row, or n_folds."""
        if self.cv is not None:
            tests = [test for _, test in check_cv(self.cv).split(X, y, groups)]
        elif groups is not None:
            splitter = GroupShuffleSplit(
                1, test_size=self.validation_fraction, random_state=self.random_state
            )
            tests = [test for _, test in splitter.split(X, y, groups)]
        else:
            tests = [self._held_out(len(X))]
        folds = np.full(len(X), len(tests))
        for fold, test in enumerate(tests):
            if np.any(folds[test] < len(tests)):
                raise ValueError(
                    f"cv={self.cv!r} puts a row in the test rows of two splits; "
                    "StreamingRidgeCV needs disjoint test folds (KFold, GroupKFold)."
                )
            folds[test] = fold
        return folds, len(tests)

    def _check_complements(self, X, y, groups):
        """Refuse splits whose training rows are not all the other rows."""
        if self.cv is None:
            return
        for train, test in check_cv(self.cv).split(X, y, groups):
            if len(train) + len(test) != len(X):
                raise ValueError(
                    f"cv={self.cv!r} trains on fewer rows than those outside its "
                    "test rows (as TimeSeriesSplit does); StreamingRidgeCV "
                    "needs splits that train on every other row (KFold, "
                    "GroupKFold, LeaveOneGroupOut)."
                )

    def _ridge_at(self, transformer, alpha, coef, intercept, y_ndim):
        """A fitted :class:`StreamingRidge` with these weights, to score."""
        ridge = StreamingRidge(
            alpha, transformer=self.transformer, chunk_size=self.chunk_size,
            fit_intercept=self.fit_intercept, standardize=self.standardize,
        )
        ridge.n_features_in_ = self.n_features_in_
        ridge._set_solution(transformer, 0, y_ndim, coef, intercept)
        return ridge

    def _fold_scores(self, transformer, alphas, path, X, y):
        """Score of each (coef, intercept) of ``path`` on the rows (X, y)."""
        if self.scoring is None:
            Y = y.reshape(len(y), -1)
            return -self._validation_mse(transformer, path, X, Y) * len(X)
        return np.array([
            self.scoring(self._ridge_at(transformer, alpha, *weights, y.ndim), X, y)
            for alpha, weights in zip(alphas, path, strict=True)
        ])

    def _validation_mse(self, transformer, path, X, Y):
        """Mean squared error of each (coef, intercept) of path on (X, Y)."""
        coefs = np.hstack([coef for coef, _ in path])
        intercepts = np.concatenate([intercept for _, intercept in path])
        squared = np.zeros(len(path) * Y.shape[1])
        for rows, features in self._chunks(transformer, X):
            error = features @ coefs + intercepts - np.tile(Y[rows], len(path))
            squared += np.einsum("ij,ij->j", error, error)
        return squared.reshape(len(path), -1).mean(axis=1) / len(X)

    def _score_path(self, transformer, alphas, parts, folds, X, y):
        """Validation score per penalty, over the folds."""
        scores = []
        for fold in range(len(parts) - 1):
            kept = functools.reduce(
                operator.add, [eq for i, eq in enumerate(parts) if i != fold]
            )
            path = kept.solve_path(alphas, self.fit_intercept, self.standardize)
            test = folds == fold
            fold_scores = self._fold_scores(transformer, alphas, path, X[test], y[test])
            scores.append(fold_scores)
        if self.scoring is None:  # pooled over all held-out rows
            return np.sum(scores, axis=0) / np.sum(folds < len(parts) - 1)
        return np.mean(scores, axis=0)

    def _warn_at_edge(self, alphas, scores, best):
        """Warn when the best penalty is an end of the grid and beats its neighbour."""
        order = np.argsort(alphas, kind="stable")
        for end, inner, word in ((order[0], order[1:2], "smallest"),
                                 (order[-1], order[-2:-1], "largest")):
            if best == end and inner.size and scores[best] > scores[inner[0]]:
                warnings.warn(
                    f"StreamingRidgeCV chose alpha={alphas[best]:.3g}, the {word} "
                    f"of alphas, and it scored better than its neighbour: the "
                    f"best penalty may lie beyond the grid; extend alphas.",
                    UserWarning,
                    stacklevel=6,
                )

    @fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y, groups=None):
        """Choose the penalty on held-out rows, then fit on all rows.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data (the transformer's input); ``validation_fraction``
            of its rows (or the ``cv`` folds) are held out to score the
            penalties.
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
            Targets, finite.
        groups : array-like of shape (n_samples,) or None, default=None
            Group of each row, e.g. its trajectory: with ``cv=None`` whole
            groups are held out; a ``cv`` splitter receives them.

        Returns
        -------
        self : StreamingRidgeCV
            The estimator refitted with the chosen ``alpha_``; unchanged if
            the fit raises.
        """
        alphas = self._check_alphas()
        X, y = self._validate_xy(X, y, reset=True)
        if groups is not None:
            groups = check_array(
                groups, ensure_2d=False, dtype=None, input_name="groups"
            )
            check_consistent_length(X, groups)
        self._check_complements(X, y, groups)
        folds, n_folds = self._test_folds(X, y, groups)
        transformer = self._fit_transformer(X, y)
        parts = self._accumulate(
            "fit", transformer, X, y.reshape(len(y), -1), parts=folds,
            n_parts=n_folds + 1,
        )
        scores = self._score_path(transformer, alphas, parts, folds, X, y)
        # ties go to the larger penalty
        order = np.argsort(-alphas, kind="stable")
        best = order[np.argmax(scores[order])]
        if self.verbose:
            what, sign = ("MSE", -1) if self.scoring is None else ("score", 1)
            for alpha, score in zip(alphas, scores, strict=True):
                print(
                    f"StreamingRidgeCV: alpha {alpha:.1e} validation {what} "
                    f"{sign * score:.4e}",
                    file=sys.stderr,
                )
        self._warn_at_edge(alphas, scores, best)
        equations = functools.reduce(operator.add, parts)
        [(coef, intercept)] = equations.solve_path(
            [alphas[best]], self.fit_intercept, self.standardize
        )
        self.alpha_ = float(alphas[best])
        self.score_path_ = scores
        if self.scoring is None:
            self.mse_path_ = -scores
        self._set_solution(transformer, equations.n_samples, y.ndim, coef, intercept)
        return self
