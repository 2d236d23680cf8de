"""Feature maps of states: learned diffusion features and random Fourier features."""

from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_is_fitted, validate_data


class RFFFeaturizer(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Random Fourier features of the paper's baseline surrogate.

    Maps a state ``x`` to ``sqrt(2 / n) [sin(2 pi x W / wavelength),
    cos(2 pi x W / wavelength)]`` with ``W ~ N(0, 1)`` of shape
    ``(n_features, n_components / 2)``.

    Parameters
    ----------
    n_components : int, default=1536
        Number of output features; must be even (half sines, half cosines).
    wavelength : float, default=1.0
        Length scale of the features, in the units of ``X``.
    random_state : int, RandomState instance or None, default=None
        Seeds the draw of ``W``.

    Attributes
    ----------
    random_weights_ : ndarray of shape (n_features_in_, n_components // 2)
        The frequencies ``2 pi W / wavelength``.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of features seen during fit, when ``X`` has string column names.

    See Also
    --------
    sklearn.kernel_approximation.RBFSampler : Random Fourier features with a
        random phase instead of the sin/cos pair.

    Notes
    -----
    Both this class and :class:`~sklearn.kernel_approximation.RBFSampler`
    approximate the Gaussian kernel
    ``k(x, y) = exp(-gamma ||x - y||^2)`` with
    ``gamma = 2 pi^2 / wavelength^2``: ``RFFFeaturizer(wavelength=w)`` and
    ``RBFSampler(gamma=2 * np.pi**2 / w**2)`` have the same expected inner
    products. The sin/cos pair has lower variance than a random phase for
    the same number of features (Sutherland & Schneider, 2015).

    Finn et al. (2024) use ``n_components=1536`` (and 256) with wavelength 1
    on normalised Lorenz 63 states, followed by ridge regression.

    Examples
    --------
    >>> import numpy as np
    >>> from skdiffusion import RFFFeaturizer
    >>> X = np.random.default_rng(0).normal(size=(5, 3))
    >>> RFFFeaturizer(n_components=8, random_state=0).fit_transform(X).shape
    (5, 8)
    """

    _parameter_constraints: dict = {
        "n_components": [Interval(Integral, 2, None, closed="left")],
        "wavelength": [Interval(Real, 0, None, closed="neither")],
        "random_state": ["random_state"],
    }

    def __init__(self, n_components=1536, *, wavelength=1.0, random_state=None):
        self.n_components = n_components
        self.wavelength = wavelength
        self.random_state = random_state

    def fit(self, X, y=None):
        """Draw the random frequencies for the number of features of ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training states; only their number of columns is used.
        y : None
            Ignored.

        Returns
        -------
        self : RFFFeaturizer
            The fitted featurizer.
        """
        self._validate_params()
        if self.n_components % 2:
            raise ValueError(
                f"n_components must be even (sines and cosines in pairs), "
                f"got {self.n_components}."
            )
        X = validate_data(self, X, dtype=[np.float64, np.float32])
        rng = check_random_state(self.random_state)
        weights = rng.standard_normal(size=(X.shape[1], self.n_components // 2))
        weights *= 2 * np.pi / self.wavelength
        self.random_weights_ = weights.astype(X.dtype, copy=False)
        self._n_features_out = self.n_components
        return self

    def transform(self, X):
        """Return the random Fourier features of ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            States.

        Returns
        -------
        features : ndarray of shape (n_samples, n_components)
            Sines then cosines, in the dtype of ``X`` (float32 or float64).
        """
        check_is_fitted(self)
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        dtype = np.result_type(X.dtype, np.float32)
        weights = self.random_weights_.astype(dtype, copy=False)
        half = weights.shape[1]
        out = np.empty((X.shape[0], 2 * half), dtype=dtype)
        # Project once into the sine half, then derive both halves in place.
        phase = out[:, :half]
        np.matmul(X.astype(dtype, copy=False), weights, out=phase)
        np.cos(phase, out=out[:, half:])
        np.sin(phase, out=phase)
        out *= np.sqrt(2.0 / (2 * half)).astype(dtype)
        return out

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags
