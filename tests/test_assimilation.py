"""Tests of skdiffusion.assimilation: analysis formulas, samplers, twin experiments.

The paper's experiment built on them is tested in tests/test_experiments.py.
"""

import numpy as np
import pytest
from sklearn.model_selection import ParameterGrid

from skdiffusion.assimilation import (
    ETKF,
    LORENZ63_B_DIAGONAL,
    LORENZ63_B_FULL,
    ClimatologyEnsemble,
    DiffusionEnsemble,
    EnOI,
    StaticCovarianceEnsemble,
    ThreeDVar,
    enoi_analysis,
    ensemble_transform,
    etkf_analysis,
    observation_matrix,
    run_twin_experiment,
    tune_twin_experiment,
    var3d_analysis,
)
from skdiffusion.datasets import LORENZ63_SCALE, LORENZ63_SHIFT, make_lorenz63

OBS_STD = 2.0  # the paper's observation error, model units


def kalman_update(mean, covariance, y, H, std):
    """Textbook Kalman update, the reference for every analysis."""
    R = np.diag(np.broadcast_to(std, (H.shape[0],)) ** 2)
    gain = covariance @ H.T @ np.linalg.inv(H @ covariance @ H.T + R)
    return mean + gain @ (y - H @ mean), covariance - gain @ H @ covariance


def ensemble_with_moments(mean, covariance, n_members, seed=0):
    """An ensemble whose sample mean and covariance (ddof=1) are exactly these."""
    z = np.random.default_rng(seed).standard_normal((n_members, len(mean)))
    z -= z.mean(axis=0)
    whiten = np.linalg.cholesky(np.cov(z.T))
    z = np.linalg.solve(whiten, z.T).T
    return mean + z @ np.linalg.cholesky(covariance).T


@pytest.fixture(scope="module")
def truth():
    # 8 experiments, 50 burn-in + 250 scored cycles of 0.1 MTU.
    return make_lorenz63(8, 3001, random_state=1).trajectories


def pooled(values):
    return float(np.sqrt(np.mean(values**2)))


# -- observation operators --------------------------------------------------


def test_observation_matrix_from_indices_none_and_matrix():
    assert np.array_equal(observation_matrix(None, 3), np.eye(3))
    assert np.array_equal(observation_matrix([1], 3), [[0.0, 1.0, 0.0]])
    H = [[1.0, 1.0, 0.0]]
    assert np.array_equal(observation_matrix(H, 3), H)


@pytest.mark.parametrize("operator", [[3], [-1], [[1.0, 0.0]], [0.5, 1.0], []])
def test_observation_matrix_rejects_bad_operators(operator):
    with pytest.raises(ValueError, match="obs_operator"):
        observation_matrix(operator, 3)


# -- analysis formulas: known values ------------------------------------------


def test_scalar_case_equals_the_scalar_kalman_update():
    # Background variance 4, observation variance 1: gain 0.8.
    forecast, y = np.array([[1.0]]), np.array([[3.0]])
    expected_mean, expected_var = 1 + 0.8 * 2, 0.2 * 4
    a, cov = var3d_analysis(forecast, y, covariance=[[4.0]], obs_error_std=1.0)
    assert a[0, 0] == pytest.approx(expected_mean) and cov[0, 0] == pytest.approx(0.8)
    ens = np.array([[[-1.0], [1.0]]]) * np.sqrt(2)  # sample variance 4
    a, a_ens = enoi_analysis(forecast, ens + 10.0, y, obs_error_std=1.0)
    assert a[0, 0] == pytest.approx(expected_mean)
    assert a_ens.var(axis=1, ddof=1)[0, 0] == pytest.approx(expected_var)
    a_ens = etkf_analysis(ens + 1.0, y, obs_error_std=1.0)
    assert a_ens.mean(axis=1)[0, 0] == pytest.approx(expected_mean)
    assert a_ens.var(axis=1, ddof=1)[0, 0] == pytest.approx(expected_var)


def test_etkf_matches_the_kalman_filter_with_the_sample_covariance():
    # Partial observations, per-observation errors and inflation: the ETKF's
    # analysis mean and covariance are the Kalman update with inflation * P.
    mean = np.array([1.0, -2.0, 20.0])
    P = np.array([[2.0, 1.5, 0.2], [1.5, 3.0, -0.4], [0.2, -0.4, 1.0]])
    ens = ensemble_with_moments(mean, P, 7)
    y, std, inflation = np.array([2.5, 18.0]), np.array([1.0, 0.5]), 1.3
    H = observation_matrix([0, 2], 3)
    out = etkf_analysis(ens[None], y[None], obs_error_std=std, obs_operator=[0, 2],
                        inflation=inflation)[0]
    ref_mean, ref_cov = kalman_update(mean, inflation * P, y, H, std)
    np.testing.assert_allclose(out.mean(axis=0), ref_mean, rtol=1e-10)
    np.testing.assert_allclose(np.cov(out.T), ref_cov, rtol=1e-9, atol=1e-12)


def test_etkf_with_a_large_random_ensemble_approaches_the_kalman_filter():
    rng = np.random.default_rng(0)
    mean, P = np.array([0.0, 1.0, 2.0]), np.diag([4.0, 1.0, 2.0])
    ens = rng.multivariate_normal(mean, P, size=1000)
    y = np.array([1.0, 0.0, 3.0])
    out = etkf_analysis(ens[None], y[None], obs_error_std=1.0)[0]
    ref_mean, ref_cov = kalman_update(mean, P, y, np.eye(3), 1.0)
    np.testing.assert_allclose(out.mean(axis=0), ref_mean, atol=0.1)
    np.testing.assert_allclose(np.cov(out.T), ref_cov, atol=0.05)


def test_enoi_is_the_kalman_update_of_the_forecast_with_the_ensemble_covariance():
    P = np.array([[2.0, 1.0, 0.0], [1.0, 3.0, 0.5], [0.0, 0.5, 1.0]])
    ens = ensemble_with_moments(np.zeros(3), P, 10)
    forecast, y = np.array([1.0, 2.0, 3.0]), np.array([0.0, 4.0])
    H = np.array([[1.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    # The ensemble's own mean is irrelevant: only its perturbations count.
    a, a_ens = enoi_analysis(forecast[None], ens[None] + 5.0, y[None],
                             obs_error_std=1.5, obs_operator=H)
    ref_mean, ref_cov = kalman_update(forecast, P, y, H, 1.5)
    np.testing.assert_allclose(a[0], ref_mean, rtol=1e-10)
    np.testing.assert_allclose(a_ens[0].mean(axis=0), ref_mean, rtol=1e-10)
    np.testing.assert_allclose(np.cov(a_ens[0].T), ref_cov, rtol=1e-9, atol=1e-12)


def test_var3d_matches_the_kalman_update_in_a_batch():
    rng = np.random.default_rng(0)
    forecasts, ys = rng.normal(size=(5, 3)), rng.normal(size=(5, 3))
    a, cov = var3d_analysis(forecasts, ys, covariance=LORENZ63_B_FULL,
                            obs_error_std=OBS_STD)
    for f, y, out in zip(forecasts, ys, a, strict=True):
        ref_mean, ref_cov = kalman_update(f, LORENZ63_B_FULL, y, np.eye(3), OBS_STD)
        np.testing.assert_allclose(out, ref_mean)
    np.testing.assert_allclose(cov, ref_cov)


def test_ensemble_transform_is_the_identity_without_information():
    # No observed spread: the mean does not move and members stay as they are.
    weights, transform = ensemble_transform([[[0.0], [0.0], [0.0]]], [[1.0]])
    np.testing.assert_allclose(weights, 0.0)
    np.testing.assert_allclose(transform[0], np.eye(3))
    with pytest.raises(ValueError, match="inflation"):
        ensemble_transform([[[0.0], [0.0]]], [[1.0]], inflation=0.0)


def test_experiments_in_a_batch_are_independent():
    rng = np.random.default_rng(0)
    ens, ys = rng.normal(size=(4, 5, 3)), rng.normal(size=(4, 3))
    batch = etkf_analysis(ens, ys, obs_error_std=1.0, inflation=1.2)
    single = etkf_analysis(ens[2:3], ys[2:3], obs_error_std=1.0, inflation=1.2)
    np.testing.assert_allclose(batch[2], single[0])


# -- bad input ---------------------------------------------------------------


def test_wrong_shaped_observations_raise():
    ens, forecast = np.zeros((2, 5, 3)), np.zeros((2, 3))
    with pytest.raises(ValueError, match="observations must have shape"):
        enoi_analysis(forecast, ens, np.zeros((2, 2)), obs_error_std=1.0)
    with pytest.raises(ValueError, match="observations must have shape"):
        etkf_analysis(ens, np.zeros((3, 3)), obs_error_std=1.0)
    with pytest.raises(ValueError, match="observations must have shape"):
        var3d_analysis(forecast, np.zeros(3), covariance=np.eye(3), obs_error_std=1.0)


@pytest.mark.parametrize("std", [-1.0, 0.0, np.nan, [1.0, -2.0, 1.0], [1.0, 1.0]])
def test_bad_obs_error_std_raises(std, truth):
    ens = np.random.default_rng(0).normal(size=(2, 5, 3))
    with pytest.raises(ValueError, match="obs_error_std"):
        etkf_analysis(ens, np.zeros((2, 3)), obs_error_std=std)
    with pytest.raises(ValueError, match="obs_error_std"):
        run_twin_experiment(ThreeDVar(), truth, obs_error_std=std, n_cycles=1)


def test_fewer_than_two_members_raise():
    with pytest.raises(ValueError, match="at least 2 members"):
        etkf_analysis(np.zeros((1, 1, 3)), np.zeros((1, 3)), obs_error_std=1.0)
    for sampler in (
        StaticCovarianceEnsemble(n_members=1),
        ClimatologyEnsemble(np.zeros((5, 3)), n_members=1),
    ):
        with pytest.raises(ValueError, match="n_members"):
            sampler.sample_ensemble(np.zeros((1, 3)))


def test_settings_are_checked_at_each_entry_point_not_in_properties(truth):
    etkf = ETKF(n_members=1)
    assert etkf.n_forecast_members == 1  # a property only reads
    background, observations = np.zeros((2, 1, 3)), np.zeros((2, 3))
    with pytest.raises(ValueError, match="n_members"):
        etkf.assimilate(background, observations, obs_operator=None,
                        obs_error_std=1.0)
    calls = []

    def model(states, n_steps):
        calls.append(n_steps)
        return states

    # Before the first forecast, for the method and for its settings' types.
    for method in (etkf, ETKF(n_members="3"), ThreeDVar(inflation=0.0)):
        with pytest.raises(ValueError, match="n_members|inflation"):
            run_twin_experiment(method, truth, model=model, n_cycles=1)
    assert calls == []
    # A sampler checks its own settings when the method asks it for members.
    enoi = EnOI(StaticCovarianceEnsemble(inflation=-1.0))
    with pytest.raises(ValueError, match="inflation"):
        enoi.assimilate(background, observations, obs_operator=None,
                        obs_error_std=1.0)


@pytest.mark.parametrize("tau", [-1, 1001])
def test_tau_outside_the_pseudo_time_axis_raises(tau):
    sampler = DiffusionEnsemble(ShiftFeaturizer(), tau=tau)
    with pytest.raises(ValueError, match="tau"):
        sampler.sample_ensemble(np.zeros((1, 3)))


def test_bad_covariance_and_inflation_raise():
    with pytest.raises(ValueError, match="positive definite"):
        StaticCovarianceEnsemble(-np.eye(3)).sample_ensemble(np.zeros((1, 3)))
    with pytest.raises(ValueError, match="X must have shape"):
        StaticCovarianceEnsemble(np.eye(2)).sample_ensemble(np.zeros((1, 3)))
    with pytest.raises(ValueError, match="inflation"):
        etkf_analysis(np.ones((1, 3, 3)), np.zeros((1, 3)), obs_error_std=1.0,
                      inflation=-1.0)


def test_diffusion_ensemble_rejects_a_bad_normalisation():
    for params in ({"scale": [1.0, 0.0, 1.0]}, {"scale": [1.0, 1.0]}):
        sampler = DiffusionEnsemble(ShiftFeaturizer(), **params)
        with pytest.raises(ValueError, match="scale"):
            sampler.sample_ensemble(np.zeros((1, 3)))


def test_runner_and_tuner_report_progress_only_when_verbose(truth, capsys):
    kwargs = dict(n_burn_in=5, n_cycles=10, random_state=0)
    run_twin_experiment(ETKF(3), truth[:2], **kwargs)
    assert capsys.readouterr() == ("", "")
    run_twin_experiment(ETKF(3), truth[:2], verbose=True, **kwargs)
    out, err = capsys.readouterr()
    assert out == "" and "ETKF twin experiment: 15/15 cycle" in err
    tune_twin_experiment(ETKF(3), {"inflation": [1.0, 1.2]}, truth[:2],
                         verbose=True, **kwargs)
    out, err = capsys.readouterr()
    assert out == "" and "ETKF tuning: 1/2 point" in err
    assert "{'inflation': 1.2}: analysis RMSE" in err


def test_runner_rejects_bad_truth_and_counts(truth):
    with pytest.raises(ValueError, match="truth must have shape"):
        run_twin_experiment(ThreeDVar(), truth[0])
    with pytest.raises(ValueError, match="n_cycles"):
        run_twin_experiment(ThreeDVar(), truth, n_burn_in=50, n_cycles=251)
    for kwargs, name in [({"obs_every": 0}, "obs_every"), ({"n_burn_in": -1},
                         "n_burn_in"), ({"n_cycles": 2.5}, "n_cycles"),
                         ({"model": "rk4"}, "model")]:
        with pytest.raises(ValueError, match=name):
            run_twin_experiment(ThreeDVar(), truth, **kwargs)


# -- samplers ----------------------------------------------------------------


def test_static_ensemble_is_centred_with_the_inflated_covariance():
    sampler = StaticCovarianceEnsemble(LORENZ63_B_FULL, inflation=3.0, n_members=2000)
    X = np.array([[1.0, 2.0, 20.0], [-5.0, -5.0, 25.0]])
    ens = sampler.sample_ensemble(X, random_state=0)
    assert ens.shape == (2, 2000, 3)
    np.testing.assert_allclose(ens.mean(axis=1), X)
    np.testing.assert_allclose(np.cov(ens[0].T), 3.0 * LORENZ63_B_FULL, atol=0.35)
    again = sampler.sample_ensemble(X, random_state=0)
    assert np.array_equal(ens, again)


def test_climatology_members_are_stored_states():
    states = np.arange(30.0).reshape(10, 3)
    ens = ClimatologyEnsemble(states, n_members=4).sample_ensemble(
        np.zeros((6, 3)), random_state=0
    )
    assert ens.shape == (6, 4, 3)
    assert all(any(np.array_equal(m, s) for s in states) for m in ens.reshape(-1, 3))


class ShiftFeaturizer:
    """Stand-in for DiffusionFeaturizer: members are X plus tau-scaled noise."""

    def __init__(self):
        self.calls = []

    def sample_ensemble(self, X, tau, n_members, *, n_steps, method, random_state):
        self.calls.append(dict(X=X, tau=tau, n_steps=n_steps, method=method))
        rng = np.random.default_rng(random_state)
        noise = rng.standard_normal((X.shape[0], n_members, X.shape[1]))
        return X[:, None, :] + tau / 1000 * noise


def test_diffusion_ensemble_normalises_and_maps_the_step_grid():
    featurizer = ShiftFeaturizer()
    shift, scale = np.array([0.0, 0.0, 23.5]), np.array([8.0, 9.0, 8.6])
    sampler = DiffusionEnsemble(featurizer, tau=130, n_members=5, n_steps=100,
                                shift=shift, scale=scale)
    X = np.array([[1.0, 2.0, 20.0]])
    ens = sampler.sample_ensemble(X, random_state=0)
    call = featurizer.calls[-1]
    np.testing.assert_allclose(call["X"], (X - shift) / scale)
    assert (call["tau"], call["n_steps"], call["method"]) == (130, 13, "ddpm")
    # ceil(tau * n_steps / 1000), at least 1: the step size stays fixed.
    for tau, n_steps, expected in [(5, 100, 1), (1000, 50, 50), (131, 10, 2)]:
        sampler.set_params(tau=tau, n_steps=n_steps).sample_ensemble(X)
        assert featurizer.calls[-1]["n_steps"] == expected
    # Model units out: the stand-in's spread of 0.13 is scaled back.
    np.testing.assert_allclose(ens.std(axis=1) / scale, 0.13, rtol=0.9)
    assert ens.shape == (1, 5, 3)


# -- tuning ------------------------------------------------------------------


def test_tuning_uses_the_grid_and_leaves_the_method_unchanged(truth):
    method = EnOI(StaticCovarianceEnsemble(LORENZ63_B_DIAGONAL, n_members=20))
    grid = {"sampler__inflation": [0.05, 5.0, 500.0]}
    search = tune_twin_experiment(method, grid, truth, n_burn_in=50,
                                  scale=LORENZ63_SCALE, random_state=0)
    assert search.results["params"] == list(ParameterGrid(grid))
    # Too little inflation ignores the observations, too much ignores the forecast.
    assert search.best_params == {"sampler__inflation": 5.0}
    assert search.best_method.sampler.inflation == 5.0
    assert method.sampler.inflation == 1.0
    assert search.best_score == min(search.results["analysis_rmse"])


# -- twin experiments ------------------------------------------------------------


def test_etkf_12_tracks_the_truth_better_than_3dvar(truth):
    kwargs = dict(n_burn_in=50, scale=LORENZ63_SCALE, random_state=0)
    etkf = run_twin_experiment(ETKF(12, inflation=1.07), truth, **kwargs)
    var3d = run_twin_experiment(ThreeDVar(LORENZ63_B_FULL, inflation=3.0), truth,
                                **kwargs)
    obs_error = np.sqrt(np.mean((OBS_STD / LORENZ63_SCALE) ** 2))  # 0.24
    assert pooled(etkf.analysis_rmse) < 0.45 * obs_error
    assert pooled(etkf.analysis_rmse) < 0.8 * pooled(var3d.analysis_rmse)
    # The analysis improves on the background, and the spread is realistic.
    assert pooled(etkf.analysis_rmse) < pooled(etkf.background_rmse)
    assert 0.5 < pooled(etkf.analysis_spread) / pooled(etkf.analysis_rmse) < 2


def test_twin_experiment_is_reproducible_and_returns_series(truth):
    sampler = StaticCovarianceEnsemble(LORENZ63_B_FULL, inflation=3.0, n_members=10)
    method = EnOI(sampler)
    kwargs = dict(n_burn_in=50, n_cycles=20, return_series=True, random_state=3)
    first = run_twin_experiment(method, truth, **kwargs)
    second = run_twin_experiment(method, truth, **kwargs)
    np.testing.assert_array_equal(first.analysis_rmse, second.analysis_rmse)
    assert first.analysis.shape == first.truth.shape == (8, 20, 3)
    assert first.observations.shape == (8, 20, 3)
    np.testing.assert_allclose(first.time, 0.1 * np.arange(51, 71))
    # The default scale is the truth's standard deviation.
    scale = truth.reshape(-1, 3).std(axis=0)
    rmse = np.sqrt((((first.analysis - first.truth) / scale) ** 2).mean(axis=(1, 2)))
    np.testing.assert_allclose(first.analysis_rmse, rmse)


def test_same_seed_gives_every_method_the_same_observations(truth):
    kwargs = dict(n_burn_in=50, n_cycles=5, return_series=True, random_state=0)
    a = run_twin_experiment(ThreeDVar(), truth, **kwargs)
    b = run_twin_experiment(ETKF(3), truth, **kwargs)
    np.testing.assert_array_equal(a.observations, b.observations)


# -- diffusion ensembles with a (tiny) trained featurizer ---------------------


@pytest.fixture(scope="module")
def featurizer():
    from skdiffusion import DiffusionFeaturizer

    X = make_lorenz63(2, 2000, random_state=0).X
    return DiffusionFeaturizer(
        n_hidden=32, time_embedding_dim=32, max_iter=100, batch_size=256,
        random_state=0,
    ).fit(X)


def diffusion_sampler(featurizer, **params):
    return DiffusionEnsemble(featurizer, shift=LORENZ63_SHIFT, scale=LORENZ63_SCALE,
                             **params)


def test_diffusion_spread_grows_with_tau_and_collapses_at_zero(featurizer):
    states = make_lorenz63(1, 40, random_state=1).trajectories[0]
    sampler = diffusion_sampler(featurizer, n_members=16)
    spreads = []
    for tau in (0, 25, 50, 100, 200, 400, 800):
        ens = sampler.set_params(tau=tau).sample_ensemble(states, random_state=0)
        assert ens.shape == (40, 16, 3)
        spreads.append((ens.std(axis=1) / LORENZ63_SCALE).mean())
        if tau == 0:
            np.testing.assert_allclose(ens, np.repeat(states[:, None], 16, axis=1),
                                       rtol=1e-5)
    assert spreads[0] < 1e-12
    assert np.all(np.diff(spreads) > 0), spreads


def test_diffusion_enoi_runs_in_a_twin_experiment(featurizer, truth):
    method = EnOI(diffusion_sampler(featurizer, tau=100, n_members=10))
    result = run_twin_experiment(method, truth[:4], n_burn_in=10, n_cycles=30,
                                 scale=LORENZ63_SCALE, random_state=0)
    # Far better than the climatology (about 1), the analysis uses the data.
    assert np.all(result.analysis_rmse < 0.5)
    assert np.all(result.analysis_spread > 0)
