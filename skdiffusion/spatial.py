"""Fields on a periodic 1-D grid (a ring of sites): local inputs, one shared head.

A state of a spatially extended system such as Lorenz 96 is a field of
``n_sites`` values on a ring. Its dynamics are the same at every site, so a
surrogate of the field can be one model of a site and its neighbourhood,
shared by all sites: :class:`PeriodicPatches` gives each site its periodic
neighbourhood, and :class:`SiteWiseRegressor` fits one head over all (sample,
site) rows. Both work site-major (the columns of site 0, then of site 1, ...)
and take rings of any size after fitting, as
:class:`~skdiffusion.DiffusionFeaturizer` with ``architecture="conv"`` does.
"""

from numbers import Integral

import numpy as np
from sklearn.base import (
    BaseEstimator,
    MetaEstimatorMixin,
    RegressorMixin,
    TransformerMixin,
    clone,
)
from sklearn.utils._param_validation import HasMethods, Interval
from sklearn.utils.validation import (
    _check_feature_names_in,
    _is_arraylike_not_scalar,
    _num_features,
    _num_samples,
    check_is_fitted,
)

from ._base import fit_context
from ._validation import check_array, validate_data

__all__ = ["PeriodicPatches", "SiteWiseRegressor"]


def check_ring(estimator, X, n_site_features=1):
    """Validate ``X`` for a fitted estimator that takes rings of any size.

    At the fitted width, ``X`` is validated as by
    :func:`~sklearn.utils.validation.validate_data` (its feature names
    included); at another width it is a ring of another size, and its width
    must be a multiple of `n_site_features`. Float32 stays float32.
    """
    dtype = [np.float64, np.float32]
    try:
        fitted_width = _num_features(X) == estimator.n_features_in_
    except TypeError:
        fitted_width = True  # let validate_data say what is wrong with X
    if fitted_width:
        return validate_data(estimator, X, reset=False, dtype=dtype)
    X = check_array(X, dtype=dtype, input_name="X")
    if X.shape[1] % n_site_features:
        raise ValueError(
            f"X has {X.shape[1]} features, but {type(estimator).__name__} is "
            f"expecting {n_site_features} features as input per site: the "
            f"width of X must be a multiple of {n_site_features}."
        )
    return X


def _per_site(value, n_samples, n_sites):
    """A fit parameter given per sample, repeated for each site of the sample."""
    if _is_arraylike_not_scalar(value) and _num_samples(value) == n_samples:
        return np.repeat(np.asarray(value), n_sites, axis=0)
    return value


class SiteWiseRegressor(MetaEstimatorMixin, RegressorMixin, BaseEstimator):
    """One regressor shared by every site of a ring: translation symmetry.

    ``X`` holds the same features for each site, site after site, and ``y``
    one target per site. The regressor is fitted once on all (sample, site)
    rows, so what it learns at one site serves at every other, and it
    predicts rings of any size::

        estimator.fit(X.reshape(-1, n_site_features), y.reshape(-1))   # fit
        estimator.predict(X.reshape(-1, n_site_features))              # predict
            .reshape(n_samples, -1)

    Parameters
    ----------
    estimator : object
        Regressor (or pipeline) of one site's target from its features, e.g.
        :class:`~skdiffusion.StreamingRidgeCV`. It is cloned before fitting.

    Attributes
    ----------
    estimator_ : object
        The fitted clone of ``estimator``.
    n_sites_ : int
        Number of sites of the training ring: the columns of ``y``.
    n_site_features_ : int
        Number of features per site: ``n_features_in_ // n_sites_``.
    n_features_in_ : int
        Number of columns of the training ``X``.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during fit, when ``X`` has string column names.

    See Also
    --------
    PeriodicPatches : Each site's periodic neighbourhood, as site-wise input.
    skdiffusion.DiffusionFeaturizer : Per-site features with
        ``architecture="conv"``.
    sklearn.multioutput.MultiOutputRegressor : One regressor per target
        instead of one for all.

    Notes
    -----
    Column ``s * n_site_features_ + j`` of ``X`` is feature ``j`` of site
    ``s`` (site-major), the layout of :class:`PeriodicPatches` and of the
    convolutional :class:`~skdiffusion.DiffusionFeaturizer`; for a
    C-contiguous ``X`` the rows of the regressor are a view, not a copy.
    ``predict`` takes any width that is a multiple of ``n_site_features_``
    and returns one column per site, so a
    :class:`~skdiffusion.SurrogateForecaster` with ``ring=True`` forecasts
    rings of a size it was not trained on.

    A fit parameter given per sample (an array-like with one entry per row
    of ``X``, such as ``sample_weight``, or the ``groups`` of a search used
    as ``estimator``) is repeated for each site of the sample, so all the
    sites of a sample weigh the same and fall in the same fold; other fit
    parameters are passed on unchanged.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LinearRegression
    >>> from skdiffusion import SiteWiseRegressor
    >>> X = np.random.default_rng(0).normal(size=(50, 8))  # 4 sites x 2
    >>> y = X[:, 0::2] - 2 * X[:, 1::2]  # the same rule at every site
    >>> model = SiteWiseRegressor(LinearRegression()).fit(X, y)
    >>> model.n_sites_, model.n_site_features_, np.round(model.estimator_.coef_, 6)
    (4, 2, array([ 1., -2.]))
    >>> model.predict(np.ones((1, 12))).round(6)  # a ring of 6 sites
    array([[-1., -1., -1., -1., -1., -1.]])
    """

    _parameter_constraints: dict = {"estimator": [HasMethods(["fit", "predict"])]}

    def __init__(self, estimator):
        self.estimator = estimator

    # The estimator's parameters are validated by its own fit.
    @fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y, **fit_params):
        """Fit a clone of the estimator to all (sample, site) rows.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_sites * n_site_features)
            Features of each site, site after site.
        y : array-like of shape (n_samples, n_sites) or (n_samples,)
            Target of each site (1-D: a ring of one site).
        **fit_params : dict
            Passed to the estimator's ``fit``; those with one entry per
            sample are repeated for each site.

        Returns
        -------
        self : SiteWiseRegressor
            The fitted regressor; unchanged if the fit raises.
        """
        dtype = [np.float64, np.float32]
        X, y = validate_data(self, X, y, multi_output=True, y_numeric=True, dtype=dtype)
        targets = y.reshape(len(y), -1)
        n_sites = targets.shape[1]
        if X.shape[1] % n_sites:
            raise ValueError(
                f"X has {X.shape[1]} columns, not a multiple of the {n_sites} "
                "sites (columns) of y: X must hold the same number of features "
                "for each site, site after site."
            )
        n_site_features = X.shape[1] // n_sites
        params = {
            name: _per_site(value, len(X), n_sites)
            for name, value in fit_params.items()
        }
        estimator = clone(self.estimator)
        estimator.fit(X.reshape(-1, n_site_features), targets.reshape(-1), **params)
        self.estimator_ = estimator
        self.n_sites_ = n_sites
        self.n_site_features_ = n_site_features
        self._y_ndim = y.ndim
        return self

    def predict(self, X):
        """Predict the target of every site of a ring of any size.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_sites * n_site_features)
            Features of each site, site after site; any number of sites.

        Returns
        -------
        y_pred : ndarray of shape (n_samples, n_sites) or (n_samples,)
            One prediction per site; 1-D when ``y`` was 1-D in fit and ``X``
            has one site.
        """
        check_is_fitted(self)
        X = check_ring(self, X, self.n_site_features_)
        n_sites = X.shape[1] // self.n_site_features_
        rows = X.reshape(-1, self.n_site_features_)
        y_pred = np.asarray(self.estimator_.predict(rows)).reshape(len(X), n_sites)
        return y_pred[:, 0] if self._y_ndim == 1 and n_sites == 1 else y_pred

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags


class PeriodicPatches(TransformerMixin, BaseEstimator):
    """Each site's periodic neighbourhood on a ring, site after site.

    Maps a field ``x`` of ``n_sites`` values on a ring to, for each site
    ``s``, the values at sites ``s - radius, ..., s + radius`` (indices
    modulo ``n_sites``). Followed by a :class:`SiteWiseRegressor`, any
    regressor becomes a local model of the field shared by all sites.
    With ``n_site_features > 1``, each site holds a block of values (e.g.
    the per-site features of a convolutional
    :class:`~skdiffusion.DiffusionFeaturizer`), and each site's output is
    the blocks of its neighbourhood.

    Parameters
    ----------
    radius : int, default=4
        Sites to each side of a site (>= 0): patches of ``2 * radius + 1``
        values (blocks). A radius of half the ring or more wraps around
        it, so patches repeat sites.
    n_site_features : int, default=1
        Values per site of the input (site-major: the values of site 0,
        then of site 1, ...); the width of ``X`` must be a multiple of it.

    Attributes
    ----------
    n_features_in_ : int
        Number of sites of the training ring.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of the sites seen during fit, when ``X`` has string column names.

    See Also
    --------
    SiteWiseRegressor : One regressor over all the sites' patches.
    skdiffusion.RFFFeaturizer : Random Fourier features, e.g. of each patch.

    Notes
    -----
    Column ``s * (2 * radius + 1) + radius + o`` of the output holds
    ``x[(s + o) % n_sites]`` for offsets ``o`` in ``-radius..radius``, named
    ``"s{s}_o{o}"`` by :meth:`get_feature_names_out` (e.g. ``"s3_o-1"``);
    with blocks of ``c = n_site_features`` values, column ``(s * (2 * radius
    + 1) + radius + o) * c + j`` holds value ``j`` of site ``s + o``, named
    ``"s{s}_o{o}_v{j}"``. ``transform`` takes rings of any
    size, is one gather of the columns, and keeps float32 float32. Its
    output is ``2 * radius + 1`` times as large as its input.

    A local random-features baseline of Lorenz 96 (random Fourier features
    of each 9-site patch, one ridge regression shared by all sites)::

        make_pipeline(
            PeriodicPatches(radius=4),
            SiteWiseRegressor(make_pipeline(RFFFeaturizer(wavelength=30),
                                            StreamingRidgeCV())),
        )

    Examples
    --------
    >>> import numpy as np
    >>> from skdiffusion import PeriodicPatches
    >>> patches = PeriodicPatches(radius=1).fit(np.zeros((1, 4)))
    >>> patches.transform([[0.0, 1.0, 2.0, 3.0]])
    array([[3., 0., 1., 0., 1., 2., 1., 2., 3., 2., 3., 0.]])
    >>> patches.get_feature_names_out()[:3]
    array(['s0_o-1', 's0_o0', 's0_o1'], dtype=object)
    """

    _parameter_constraints: dict = {
        "radius": [Interval(Integral, 0, None, closed="left")],
        "n_site_features": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(self, radius=4, *, n_site_features=1):
        self.radius = radius
        self.n_site_features = n_site_features

    @fit_context()
    def fit(self, X, y=None):
        """Record the number of sites (only used to name the features).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_sites * n_site_features)
            Fields on a ring.
        y : None
            Ignored.

        Returns
        -------
        self : PeriodicPatches
            The fitted transformer.
        """
        X = validate_data(self, X, dtype=[np.float64, np.float32])
        if X.shape[1] % self.n_site_features:
            raise ValueError(
                f"X has {X.shape[1]} columns, not a multiple of n_site_features="
                f"{self.n_site_features}: X must hold the same number of values "
                "for each site, site after site."
            )
        return self

    def transform(self, X):
        """Return the periodic neighbourhood of every site.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_sites * n_site_features)
            Fields on a ring of any size.

        Returns
        -------
        patches : ndarray of shape (n_samples, n_sites * (2 * radius + 1) \
                * n_site_features)
            Site-major neighbourhoods, in the dtype of ``X``.
        """
        check_is_fitted(self)
        c = self.n_site_features
        X = check_ring(self, X, c)
        n_sites = X.shape[1] // c
        offsets = np.arange(-self.radius, self.radius + 1)
        sites = (np.arange(n_sites)[:, None] + offsets) % n_sites
        columns = sites[:, :, None] * c + np.arange(c)
        return X[:, columns.ravel()]

    def get_feature_names_out(self, input_features=None):
        """Names of the patch values: ``"s{site}_o{offset}"``, e.g. ``"s3_o-1"``.

        With ``n_site_features > 1``, ``"s{site}_o{offset}_v{j}"`` for value
        ``j`` of each block.

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            Names of the sites; if given, they must be those seen in ``fit``.
            The output names number the sites instead.

        Returns
        -------
        feature_names_out : ndarray of str objects
            One name per column of ``transform`` on the training ring.
        """
        check_is_fitted(self)
        _check_feature_names_in(self, input_features, generate_names=False)
        c = self.n_site_features
        offsets = range(-self.radius, self.radius + 1)
        sites = range(self.n_features_in_ // c)
        values = [""] if c == 1 else [f"_v{j}" for j in range(c)]
        return np.asarray(
            [f"s{s}_o{o}{v}" for s in sites for o in offsets for v in values],
            dtype=object,
        )

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags
