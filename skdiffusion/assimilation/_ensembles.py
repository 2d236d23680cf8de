"""Ensemble samplers: states in, ensembles around them out.

Every sampler has ``sample_ensemble(X, *, random_state=None)`` mapping states
of shape ``(n_samples, n_features)`` to ensembles of shape
``(n_samples, n_members, n_features)``. They are parameter objects
(:class:`~sklearn.base.BaseEstimator` gives ``get_params`` / ``set_params``),
so :class:`~sklearn.model_selection.ParameterGrid` can tune them, nested in an
assimilation method as ``sampler__tau`` or ``sampler__inflation``.
"""

from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions

from ..datasets import normalize_states
from ._analysis import check_covariance
from ._settings import check_settings

# Length of the diffusion's pseudo-time axis (DESIGN.md: 1000 discrete steps).
N_DIFFUSION_STEPS = 1000

# The paper's static background covariances for Lorenz 1963, in model (raw)
# units: Finn et al. (2024) apply them to de-normalised states, and in
# normalised units their y and z variances would exceed the climatological
# variance of 1, which no background error covariance should.
LORENZ63_B_DIAGONAL = np.diag([0.520, 1.378, 1.177])
LORENZ63_B_FULL = np.array(
    [
        [0.520, 0.747, 0.000],
        [0.747, 1.378, 0.001],
        [0.000, 0.001, 1.177],
    ]
)


def _check_states(X, n_features=None):
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or (n_features is not None and X.shape[1] != n_features):
        size = "n_features" if n_features is None else n_features
        raise ValueError(f"X must have shape (n_samples, {size}), got {X.shape}.")
    if not np.all(np.isfinite(X)):
        raise ValueError("X contains NaN or infinity.")
    return X


def _per_feature(name, value, default, n_features):
    """A finite per-feature array of length ``n_features``; ``None`` is ``default``."""
    if value is None:
        return np.full(n_features, default)
    array = np.asarray(value, dtype=np.float64)
    if array.shape != (n_features,):
        raise ValueError(
            f"{name} must have shape ({n_features},), one value per feature of X, "
            f"got shape {array.shape}."
        )
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or infinity.")
    return array


class StaticCovarianceEnsemble(BaseEstimator):
    """Gaussian ensembles with a fixed covariance, centred on each state.

    Members are ``x + sqrt(inflation) L z`` with ``L L^T = covariance`` and
    ``z ~ N(0, I)``, recentred so that the ensemble mean is exactly ``x``.

    Parameters
    ----------
    covariance : array-like of shape (n_features, n_features), default=None
        Background error covariance ``B``, symmetric positive definite, in
        the units of the states; ``None`` is the paper's Lorenz 1963 matrix
        :data:`LORENZ63_B_DIAGONAL`.
    inflation : float, default=1.0
        Factor multiplying ``covariance`` (the perturbations are multiplied
        by its square root).
    n_members : int, default=50
        Ensemble size (>= 2).

    See Also
    --------
    DiffusionEnsemble : Ensembles from a trained diffusion model.
    ClimatologyEnsemble : Members drawn from stored states.

    Notes
    -----
    :data:`LORENZ63_B_DIAGONAL` and :data:`LORENZ63_B_FULL` are the matrices of
    Finn et al. (2024), in model units. Their code multiplies the perturbations
    by the tuned factor (2.22 for the diagonal and 1.82 for the full matrix),
    which is ``inflation`` 4.93 and 3.31 here.

    Examples
    --------
    >>> from skdiffusion.assimilation import StaticCovarianceEnsemble
    >>> sampler = StaticCovarianceEnsemble(n_members=10)
    >>> sampler.sample_ensemble([[1.0, 2.0, 20.0]], random_state=0).shape
    (1, 10, 3)
    """

    _parameter_constraints: dict = {
        "covariance": [None, "array-like"],
        "inflation": [Interval(Real, 0, None, closed="neither")],
        "n_members": [Interval(Integral, 2, None, closed="left")],
    }

    def __init__(self, covariance=None, *, inflation=1.0, n_members=50):
        self.covariance = covariance
        self.inflation = inflation
        self.n_members = n_members

    def sample_ensemble(self, X, *, random_state=None):
        """Draw an ensemble around each state.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Ensemble centres.
        random_state : int, RandomState instance or None, default=None
            Seeds the draw.

        Returns
        -------
        ensembles : ndarray of shape (n_samples, n_members, n_features)
            Members; each ensemble's mean is the corresponding row of ``X``.
        """
        check_settings(self)
        covariance = LORENZ63_B_DIAGONAL if self.covariance is None else self.covariance
        B = check_covariance(covariance)
        X = _check_states(X, B.shape[0])
        rng = check_random_state(random_state)
        z = rng.standard_normal((X.shape[0], self.n_members, X.shape[1]))
        z -= z.mean(axis=1, keepdims=True)
        root = np.linalg.cholesky(self.inflation * B)
        return X[:, None, :] + z @ root.T


class ClimatologyEnsemble(BaseEstimator):
    """Ensembles of states drawn at random from a climatological sample.

    The members do not depend on the input states (only their number does):
    this is the classical static ensemble of EnOI, the initial ensemble of a
    twin experiment, and, through its mean, the no-assimilation reference.

    Parameters
    ----------
    states : array-like of shape (n_states, n_features)
        Climatological sample, e.g. states of long trajectories.
    n_members : int, default=50
        Ensemble size (>= 2); members are drawn with replacement.

    See Also
    --------
    StaticCovarianceEnsemble : Gaussian ensembles with a fixed covariance.

    Examples
    --------
    >>> import numpy as np
    >>> from skdiffusion.assimilation import ClimatologyEnsemble
    >>> states = np.random.default_rng(0).normal(size=(100, 3))
    >>> ClimatologyEnsemble(states, n_members=4).sample_ensemble(
    ...     np.zeros((2, 3)), random_state=0).shape
    (2, 4, 3)
    """

    _parameter_constraints: dict = {
        "states": ["array-like"],
        "n_members": [Interval(Integral, 2, None, closed="left")],
    }

    def __init__(self, states, *, n_members=50):
        self.states = states
        self.n_members = n_members

    def sample_ensemble(self, X, *, random_state=None):
        """Draw climatological members for each state.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            States; only their number and dimension are used.
        random_state : int, RandomState instance or None, default=None
            Seeds the draw.

        Returns
        -------
        ensembles : ndarray of shape (n_samples, n_members, n_features)
            Members drawn from ``states``.
        """
        check_settings(self)
        states = _check_states(self.states)
        X = _check_states(X, states.shape[1])
        rng = check_random_state(random_state)
        index = rng.randint(states.shape[0], size=(X.shape[0], self.n_members))
        return states[index]


class DiffusionEnsemble(BaseEstimator):
    """Ensembles generated by partial diffusion with a trained diffusion model.

    Each state is noised to pseudo-time ``tau`` and denoised back, ``n_members``
    times: the members are states of the learned attractor near the input,
    and their spread grows with ``tau``.

    Parameters
    ----------
    featurizer : DiffusionFeaturizer
        A fitted :class:`~skdiffusion.DiffusionFeaturizer` (or any object
        with its ``sample_ensemble(X, tau, n_members, *, n_steps, method,
        random_state)`` method).
    tau : int, default=130
        Pseudo-time (0..1000) to which the states are noised; the spread
        grows with it, and at 0 every member is the input state.
    n_members : int, default=50
        Ensemble size (>= 2).
    n_steps : int, default=100
        Size of an even denoising grid on the whole pseudo-time axis
        ``0..T`` (``T = featurizer.n_diffusion_steps``, 1000): the states are
        denoised from ``tau`` in ``max(1, ceil(tau * n_steps / T))`` steps
        (13 for ``tau=130``), so the step size, not the number of steps,
        stays fixed as ``tau`` is tuned.
    method : {"ddpm", "ddim"}, default="ddpm"
        Ancestral (stochastic) or deterministic denoising.
    shift, scale : array-like of shape (n_features,), default=None
        The featurizer's normalisation: states are mapped to
        ``(x - shift) / scale`` before sampling and back after, so states
        and ensembles stay in model units. ``None`` means no shift (0) or no
        scaling (1).

    See Also
    --------
    StaticCovarianceEnsemble : The static baseline.
    skdiffusion.DiffusionFeaturizer.sample_ensemble : The partial diffusion.

    Notes
    -----
    Finn et al. (2024) use 50 members, ``tau`` around 130 and DDPM on a
    100-step grid (13 denoising steps), and EnOI with these ensembles beats
    EnOI with tuned static covariances on Lorenz 1963.

    Examples
    --------
    >>> from skdiffusion import DiffusionFeaturizer
    >>> from skdiffusion.assimilation import DiffusionEnsemble
    >>> from skdiffusion.datasets import LORENZ63_SCALE, LORENZ63_SHIFT, make_lorenz63
    >>> data = make_lorenz63(1, 500, random_state=0)
    >>> featurizer = DiffusionFeaturizer(n_hidden=16, max_iter=5, random_state=0)
    >>> featurizer = featurizer.fit(data.X)  # normalised states
    >>> sampler = DiffusionEnsemble(featurizer, tau=130, n_members=8,
    ...                             shift=LORENZ63_SHIFT, scale=LORENZ63_SCALE)
    >>> states = data.trajectories[0, :2]  # model units
    >>> sampler.sample_ensemble(states, random_state=0).shape
    (2, 8, 3)
    """

    _parameter_constraints: dict = {
        "featurizer": [HasMethods(["sample_ensemble"])],
        "tau": [Interval(Integral, 0, N_DIFFUSION_STEPS, closed="both")],
        "n_members": [Interval(Integral, 2, None, closed="left")],
        "n_steps": [Interval(Integral, 1, N_DIFFUSION_STEPS, closed="both")],
        "method": [StrOptions({"ddpm", "ddim"})],
        "shift": ["array-like", None],
        "scale": ["array-like", None],
    }

    def __init__(self, featurizer, *, tau=130, n_members=50, n_steps=100,
                 method="ddpm", shift=None, scale=None):
        self.featurizer = featurizer
        self.tau = tau
        self.n_members = n_members
        self.n_steps = n_steps
        self.method = method
        self.shift = shift
        self.scale = scale

    def sample_ensemble(self, X, *, random_state=None):
        """Generate an ensemble around each state.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            States, in model units.
        random_state : int, RandomState instance or None, default=None
            Seeds the noise (drawn as an int seed for the featurizer).

        Returns
        -------
        ensembles : ndarray of shape (n_samples, n_members, n_features)
            Members in model units, float64.
        """
        from ..diffusion import ensemble_steps  # torch, only when sampling

        check_settings(self)
        X = _check_states(X)
        shift = _per_feature("shift", self.shift, 0.0, X.shape[1])
        scale = _per_feature("scale", self.scale, 1.0, X.shape[1])
        if np.any(scale <= 0):
            raise ValueError(f"scale must be positive, got {self.scale!r}.")
        seed = check_random_state(random_state).randint(np.iinfo(np.int32).max)
        n_total = getattr(self.featurizer, "n_diffusion_steps", N_DIFFUSION_STEPS)
        ensembles = self.featurizer.sample_ensemble(
            normalize_states(X, shift, scale),
            self.tau,
            self.n_members,
            n_steps=ensemble_steps(self.tau, n_total, grid_size=self.n_steps),
            method=self.method,
            random_state=seed,
        )
        return np.asarray(ensembles, dtype=np.float64) * scale + shift
