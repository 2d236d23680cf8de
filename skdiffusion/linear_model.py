"""Ridge regression whose normal equations are accumulated chunk by chunk."""

import copy
import warnings
from numbers import Integral, Real

import numpy as np
from scipy import linalg
from scipy.linalg import blas
from sklearn.base import (
    BaseEstimator,
    MultiOutputMixin,
    RegressorMixin,
    _fit_context,
    clone,
)
from sklearn.utils import gen_batches
from sklearn.utils._param_validation import HasMethods, Interval
from sklearn.utils.validation import check_is_fitted, validate_data

__all__ = ["StreamingRidge"]


class _NormalEquations:
    """Sums that define a least-squares problem, accumulated in float64.

    Rows are shifted by the mean of the first chunk before the products are
    taken, so that centring at the end does not subtract two large numbers.
    Only the upper triangle of ``gram`` is kept (``dsyrk`` halves the work).
    """

    def __init__(self, features, targets, center):
        self.n_samples = 0
        self.shift_x = features.mean(axis=0) if center else np.zeros(features.shape[1])
        self.shift_y = targets.mean(axis=0) if center else np.zeros(targets.shape[1])
        self.sum_x = np.zeros(features.shape[1])
        self.sum_y = np.zeros(targets.shape[1])
        self.gram = np.zeros((features.shape[1], features.shape[1]), order="F")
        self.cross = np.zeros((features.shape[1], targets.shape[1]))

    def update(self, features, targets):
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

    def solve(self, alpha, fit_intercept, standardize):
        """Return (coef of shape (n_features, n_targets), intercept)."""
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
        system.flat[:: len(system) + 1] += alpha
        rhs = cross / scale[:, None]
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
        coef /= scale[:, None]
        if fit_intercept:
            intercept = mean_y + self.shift_y - (mean_x + self.shift_x) @ coef
        else:
            intercept = np.zeros(coef.shape[1])
        return coef, intercept


class StreamingRidge(MultiOutputMixin, RegressorMixin, BaseEstimator):
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
        Number of features seen during fit.
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

    def __init__(
        self,
        alpha=1.0,
        *,
        transformer=None,
        chunk_size=4096,
        fit_intercept=True,
        standardize=False,
        verbose=False,
    ):
        self.alpha = alpha
        self.transformer = transformer
        self.chunk_size = chunk_size
        self.fit_intercept = fit_intercept
        self.standardize = standardize
        self.verbose = verbose

    def _features(self, transformer, X):
        return X if transformer is None else transformer.transform(X)

    def _accumulate(self, transformer, equations, X, Y):
        """Add the rows of (X, Y) to the equations, chunk by chunk."""
        batches = list(gen_batches(len(X), self.chunk_size))
        for i, batch in enumerate(batches, 1):
            features = self._features(transformer, X[batch])
            if equations is None:
                equations = _NormalEquations(features, Y[batch], self.fit_intercept)
            equations.update(features, Y[batch])
            if self.verbose and (i % max(1, len(batches) // 10) == 0):
                print(f"StreamingRidge: chunk {i}/{len(batches)}")
        return equations

    def _set_solution(self, transformer, equations, y_ndim):
        coef, intercept = equations.solve(
            self.alpha, self.fit_intercept, self.standardize
        )
        self.transformer_ = transformer
        self.n_samples_seen_ = equations.n_samples
        self._equations = equations
        self._y_ndim = y_ndim
        if y_ndim == 1:
            self.coef_, self.intercept_ = coef[:, 0], float(intercept[0])
        else:
            self.coef_, self.intercept_ = coef.T, intercept

    @_fit_context(
        # The transformer's parameters are validated by its own fit.
        prefer_skip_nested_validation=False
    )
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
            The fitted estimator.
        """
        X, y = validate_data(
            self,
            X,
            y,
            multi_output=True,
            y_numeric=True,
            dtype=[np.float64, np.float32],
        )
        transformer = None
        if self.transformer is not None:
            transformer = clone(self.transformer).fit(X, y)
        Y = y.reshape(len(y), -1)
        equations = self._accumulate(transformer, None, X, Y)
        self._set_solution(transformer, equations, y.ndim)
        return self

    @_fit_context(prefer_skip_nested_validation=False)
    def partial_fit(self, X, y):
        """Add a batch of samples to the normal equations and solve again.

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
        X, y = validate_data(
            self,
            X,
            y,
            reset=first_call,
            multi_output=True,
            y_numeric=True,
            dtype=[np.float64, np.float32],
        )
        Y = y.reshape(len(y), -1)
        if first_call:
            transformer, equations = None, None
            if self.transformer is not None:
                transformer = clone(self.transformer).fit(X, y)
        else:
            transformer, equations = self.transformer_, self._equations
            if y.ndim != self._y_ndim or Y.shape[1] != equations.sum_y.shape[0]:
                raise ValueError(
                    f"y has shape {y.shape} but earlier batches had "
                    f"{equations.sum_y.shape[0]} target(s) with ndim {self._y_ndim}."
                )
            # Work on a copy, so that a failing batch leaves self unchanged.
            equations = copy.deepcopy(equations)
        equations = self._accumulate(transformer, equations, X, Y)
        self._set_solution(transformer, equations, y.ndim)
        return self

    def predict(self, X):
        """Predict the targets of ``X``, transforming it chunk by chunk.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,) or (n_samples, n_targets)
            Predictions, with the dimensions of the ``y`` seen in fit.
        """
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
        coef = np.reshape(self.coef_, (-1, np.shape(self.coef_)[-1]))
        y_pred = np.empty((len(X), len(coef)))
        for batch in gen_batches(len(X), self.chunk_size):
            y_pred[batch] = self._features(self.transformer_, X[batch]) @ coef.T
        y_pred += self.intercept_
        return y_pred[:, 0] if self._y_ndim == 1 else y_pred

