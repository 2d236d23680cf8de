"""Assimilation methods: what a twin experiment cycles, as tunable parameter objects.

A method says how many states it propagates between observations
(``n_forecast_members``: 1 for a deterministic forecast, the ensemble size for
the ETKF) and maps a background and observations to an analysis with
``assimilate``. Methods are :class:`~sklearn.base.BaseEstimator` objects only
for ``get_params`` / ``set_params``, so a grid of their parameters (nested ones
included, e.g. ``sampler__tau``) is a :class:`~sklearn.model_selection.ParameterGrid`.
"""

from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils._param_validation import HasMethods, Interval

from ._analysis import check_covariance, enoi_analysis, etkf_analysis, var3d_analysis
from ._ensembles import LORENZ63_B_FULL
from ._settings import check_settings

_ASSIMILATE_DOC = """
        Parameters
        ----------
        background : ndarray of shape (n, n_forecast_members, n_features)
            Forecasts of each experiment.
        observations : ndarray of shape (n, n_obs)
            Observations.
        obs_operator : None, list of int or ndarray of shape (n_obs, n_features)
            Linear observation operator.
        obs_error_std : float or ndarray of shape (n_obs,)
            Observation error standard deviation.
        random_state : int, RandomState instance or None, default=None
            Seeds any sampling.

        Returns
        -------
        analysis : ndarray of shape (n, n_forecast_members, n_features)
            The states to propagate to the next cycle.
        background_variance : ndarray of shape (n, n_features)
            Variance of each variable under the background covariance used.
        analysis_variance : ndarray of shape (n, n_features)
            Variance of each variable after the analysis.
"""


class _DeterministicMethod(BaseEstimator):
    """A method that propagates a single state, its analysis, between cycles."""

    @property
    def n_forecast_members(self):
        """Number of states propagated between cycles (1)."""
        return 1


class EnOI(_DeterministicMethod):
    """Ensemble optimal interpolation around a deterministic forecast.

    Each cycle, ``sampler`` turns the forecast into an ensemble whose
    covariance drives the update (:func:`enoi_analysis`); only the
    deterministic analysis is propagated.

    Parameters
    ----------
    sampler : object with ``sample_ensemble(X, *, random_state)``
        :class:`DiffusionEnsemble`, :class:`StaticCovarianceEnsemble` or
        :class:`ClimatologyEnsemble`.

    See Also
    --------
    ThreeDVar : The update with a fixed covariance and no sampling.
    ETKF : An ensemble propagated by the model.

    Examples
    --------
    >>> from skdiffusion.assimilation import EnOI, StaticCovarianceEnsemble
    >>> method = EnOI(StaticCovarianceEnsemble(inflation=4.0))
    >>> method.set_params(sampler__inflation=2.0).sampler.inflation
    2.0
    """

    _parameter_constraints: dict = {"sampler": [HasMethods(["sample_ensemble"])]}

    def __init__(self, sampler):
        self.sampler = sampler

    def assimilate(self, background, observations, *, obs_operator, obs_error_std,
                   random_state=None):
        check_settings(self)
        forecast = background[:, 0]
        ensemble = self.sampler.sample_ensemble(forecast, random_state=random_state)
        analysis, analysis_ensemble = enoi_analysis(
            forecast,
            ensemble,
            observations,
            obs_error_std=obs_error_std,
            obs_operator=obs_operator,
        )
        return (
            analysis[:, None],
            ensemble.var(axis=1, ddof=1),
            analysis_ensemble.var(axis=1, ddof=1),
        )

    assimilate.__doc__ = "Update a deterministic forecast.\n" + _ASSIMILATE_DOC


class ThreeDVar(_DeterministicMethod):
    """3D-Var with a static background covariance times an inflation.

    Parameters
    ----------
    covariance : array-like of shape (n_features, n_features), \
            default=LORENZ63_B_FULL
        Static background error covariance, in the units of the states.
    inflation : float, default=1.0
        Factor multiplying ``covariance``.

    See Also
    --------
    var3d_analysis : The closed-form update.

    Notes
    -----
    Finn et al. (2024) run 3D-Var with their full matrix
    (:data:`LORENZ63_B_FULL`) and a perturbation factor of 1.72, which is
    ``inflation`` 2.96 here.

    Examples
    --------
    >>> from skdiffusion.assimilation import ThreeDVar
    >>> ThreeDVar(inflation=3.0).n_forecast_members
    1
    """

    _parameter_constraints: dict = {
        "covariance": ["array-like"],
        "inflation": [Interval(Real, 0, None, closed="neither")],
    }

    def __init__(self, covariance=LORENZ63_B_FULL, *, inflation=1.0):
        self.covariance = covariance
        self.inflation = inflation

    def assimilate(self, background, observations, *, obs_operator, obs_error_std,
                   random_state=None):
        check_settings(self)
        B = self.inflation * check_covariance(self.covariance)
        analysis, covariance = var3d_analysis(
            background[:, 0],
            observations,
            covariance=B,
            obs_error_std=obs_error_std,
            obs_operator=obs_operator,
        )
        n = background.shape[0]
        return (
            analysis[:, None],
            np.broadcast_to(np.diag(B), (n, B.shape[0])),
            np.broadcast_to(np.diag(covariance), (n, B.shape[0])),
        )

    assimilate.__doc__ = "Update a deterministic forecast.\n" + _ASSIMILATE_DOC


class ETKF(BaseEstimator):
    """Ensemble transform Kalman filter with multiplicative inflation.

    Parameters
    ----------
    n_members : int, default=12
        Ensemble size (>= 2), propagated by the model between cycles.
    inflation : float, default=1.0
        Factor multiplying the background covariance at each analysis.

    See Also
    --------
    etkf_analysis : The analysis step.

    Examples
    --------
    >>> from skdiffusion.assimilation import ETKF
    >>> ETKF(n_members=3, inflation=1.3).n_forecast_members
    3
    """

    _parameter_constraints: dict = {
        "n_members": [Interval(Integral, 2, None, closed="left")],
        "inflation": [Interval(Real, 0, None, closed="neither")],
    }

    def __init__(self, n_members=12, *, inflation=1.0):
        self.n_members = n_members
        self.inflation = inflation

    @property
    def n_forecast_members(self):
        """Number of states propagated between cycles (``n_members``)."""
        return self.n_members

    def assimilate(self, background, observations, *, obs_operator, obs_error_std,
                   random_state=None):
        check_settings(self)
        analysis = etkf_analysis(
            background,
            observations,
            obs_error_std=obs_error_std,
            obs_operator=obs_operator,
            inflation=self.inflation,
        )
        return (
            analysis,
            self.inflation * background.var(axis=1, ddof=1),
            analysis.var(axis=1, ddof=1),
        )

    assimilate.__doc__ = "Update an ensemble.\n" + _ASSIMILATE_DOC
