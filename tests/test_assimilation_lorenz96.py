"""Tests of localisation, the LETKF and the Lorenz 96 twin experiment.

The published anchors (DAPPER's Lorenz 96 benchmarks: 40 sites, every site
observed every 0.05 MTU with R = I) are checked on short runs with a loose
tolerance; benchmarks/bench_assimilation_lorenz96.py runs the long ones.
"""

import numpy as np
import pytest
from sklearn.base import clone

from skdiffusion.assimilation import (
    ETKF,
    LETKF,
    LORENZ63_B_DIAGONAL,
    LORENZ63_B_FULL,
    DiffusionEnsemble,
    EnOI,
    OptimalInterpolation,
    StaticCovarianceEnsemble,
    ThreeDVar,
    enoi_analysis,
    etkf_analysis,
    gaspari_cohn,
    letkf_analysis,
    rank_histogram,
    ring_distances,
    run_twin_experiment,
    var3d_analysis,
)
from skdiffusion.datasets import lorenz96, make_lorenz63, make_lorenz96, rk4

DT = 0.05  # the benchmarks' RK4 step and observation interval (MTU)


def lorenz96_model(states, n_steps):
    return rk4(lorenz96, states, DT, n_steps, return_trajectory=False)


@pytest.fixture(scope="module")
def truth96():
    # 2 experiments of 100 burn-in and 200 scored cycles of 0.05 MTU.
    return make_lorenz96(2, 301, dt=DT, random_state=1).trajectories


@pytest.fixture(scope="module")
def climate96():
    states = make_lorenz96(2, 2000, dt=DT, random_state=2).trajectories
    states = states.reshape(-1, 40)
    return states.mean(axis=0), np.cov(states.T)


def twin96(method, truth, **kwargs):
    settings = dict(obs_every=1, obs_error_std=1.0, n_burn_in=100,
                    model=lorenz96_model, scale=np.ones(40), initial_spread=0.03,
                    random_state=0)
    return run_twin_experiment(method, truth, **{**settings, **kwargs})


def ensemble96(n_members=10, n=2, seed=0):
    return np.random.default_rng(seed).normal(size=(n, n_members, 40))


# -- localisation ---------------------------------------------------------------


def test_gaspari_cohn_known_values_and_support():
    half_width = np.sqrt(10 / 3) * 4  # radius 4
    taper = gaspari_cohn([0.0, half_width, 2 * half_width - 1e-9, 2 * half_width],
                         radius=4)
    np.testing.assert_allclose(taper, [1.0, 5 / 24, 0.0, 0.0], atol=1e-12)
    # decreasing, and a Gaussian of std = radius near the origin
    values = gaspari_cohn(np.linspace(0, 20, 201), radius=4)
    assert np.all(np.diff(values) <= 1e-15)
    assert gaspari_cohn(0.4, 4) == pytest.approx(np.exp(-0.5 * 0.01), abs=1e-3)


def test_ring_distances_wrap_around():
    distances = ring_distances(6, sites=[0, 3])
    np.testing.assert_array_equal(distances[:, 0], [0, 1, 2, 3, 2, 1])
    np.testing.assert_array_equal(distances[:, 1], [3, 2, 1, 0, 1, 2])
    taper = gaspari_cohn(ring_distances(40), 4)
    assert np.linalg.eigvalsh(taper).min() > -1e-10  # a Schur product keeps B PSD


# -- the LETKF ------------------------------------------------------------------


@pytest.mark.parametrize("obs_operator", [None, np.arange(0, 40, 2)])
def test_letkf_with_an_infinite_radius_is_the_etkf(obs_operator):
    ens = ensemble96()
    y = np.random.default_rng(1).normal(size=(2, 40))[:, : 40 if obs_operator is None
                                                        else 20]
    kwargs = dict(obs_error_std=0.7, obs_operator=obs_operator, inflation=1.2)
    np.testing.assert_allclose(
        letkf_analysis(ens, y, localization_radius=1e9, **kwargs),
        etkf_analysis(ens, y, **kwargs),
        atol=1e-8,
    )


def test_letkf_updates_only_sites_near_an_observation():
    ens = ensemble96()
    y = np.array([[1.0], [-1.0]])
    local = letkf_analysis(ens, y, obs_error_std=1.0, obs_operator=[0],
                           localization_radius=1)
    # Site 0 sees its observation with weight 1: the global update there.
    global_ = etkf_analysis(ens, y, obs_error_std=1.0, obs_operator=[0])
    np.testing.assert_allclose(local[..., 0], global_[..., 0], atol=1e-12)
    # Sites beyond the taper's support (3.65 radii) keep their members.
    np.testing.assert_allclose(local[..., 4:-3], ens[..., 4:-3], atol=1e-12)
    assert not np.allclose(local[..., 1], ens[..., 1])


def test_letkf_handles_400_sites_in_one_batched_call():
    ens = ensemble96(n=1)
    wide = np.tile(ens, (1, 1, 10))
    out = letkf_analysis(wide, np.zeros((1, 100)), obs_error_std=1.0,
                         obs_operator=np.arange(0, 400, 4), localization_radius=2)
    assert out.shape == (1, 10, 400) and np.all(np.isfinite(out))


# -- Schur-product localisation ---------------------------------------------------


def test_localised_enoi_is_the_kalman_update_with_the_tapered_covariance():
    ens, forecast = ensemble96(n=1), np.zeros((1, 40))
    y = np.ones((1, 20))
    H = np.arange(0, 40, 2)
    method = EnOI(StaticCovarianceEnsemble(np.eye(40)), localization_radius=3)
    sample = np.cov(ens[0].T) * gaspari_cohn(ring_distances(40), 3)
    expected, cov = var3d_analysis(forecast, y, covariance=sample + 1e-12 * np.eye(40),
                                   obs_error_std=0.5, obs_operator=H)

    class Fixed:
        def sample_ensemble(self, X, *, random_state=None):
            return ens

    method.set_params(sampler=Fixed())
    analysis, b_var, a_var = method.assimilate(
        forecast[:, None], y, obs_operator=H, obs_error_std=0.5
    )
    np.testing.assert_allclose(analysis[:, 0], expected, atol=1e-9)
    np.testing.assert_allclose(a_var[0], np.diag(cov), atol=1e-9)
    # An infinite radius is the global EnOI.
    method.set_params(localization_radius=1e9)
    analysis, _, _ = method.assimilate(forecast[:, None], y, obs_operator=H,
                                       obs_error_std=0.5)
    global_, _ = enoi_analysis(forecast, ens, y, obs_error_std=0.5, obs_operator=H)
    np.testing.assert_allclose(analysis[:, 0], global_, atol=1e-8)
    # Inflation 4 is the ensemble's perturbations doubled, localised or not.
    wide = 2 * (ens - ens.mean(axis=1, keepdims=True))
    wider, _ = enoi_analysis(forecast, wide, y, obs_error_std=0.5, obs_operator=H)
    for radius in (None, 1e9):
        method.set_params(inflation=4.0, localization_radius=radius)
        analysis, b_var, _ = method.assimilate(forecast[:, None], y, obs_operator=H,
                                               obs_error_std=0.5)
        np.testing.assert_allclose(analysis[:, 0], wider, atol=1e-8)
        np.testing.assert_allclose(b_var, wide.var(axis=1, ddof=1), rtol=1e-8)


def test_three_dvar_tapers_and_inflates_its_covariance(climate96):
    _, cov = climate96
    method = ThreeDVar(cov, inflation=0.02, localization_radius=4)
    taper = gaspari_cohn(ring_distances(40), 4)
    np.testing.assert_allclose(method.static_covariance(), 0.02 * cov * taper)


def test_optimal_interpolation_ignores_the_forecast(climate96):
    mean, cov = climate96
    y = np.random.default_rng(0).normal(size=(2, 40))
    method = OptimalInterpolation(mean, cov)
    first, _, _ = method.assimilate(np.zeros((2, 1, 40)), y, obs_operator=None,
                                    obs_error_std=1.0)
    second, _, a_var = method.assimilate(np.ones((2, 1, 40)), y, obs_operator=None,
                                         obs_error_std=1.0)
    expected, cov_a = var3d_analysis(np.tile(mean, (2, 1)), y, covariance=cov,
                                     obs_error_std=1.0)
    np.testing.assert_allclose(first[:, 0], expected)
    np.testing.assert_allclose(second, first)
    np.testing.assert_allclose(a_var[0], np.diag(cov_a))
    with pytest.raises(ValueError, match=r"mean must .*shape \(40,\)"):
        OptimalInterpolation(mean[:3], cov).assimilate(
            np.zeros((2, 1, 40)), y, obs_operator=None, obs_error_std=1.0)


# -- the published anchors, short runs --------------------------------------------


def test_short_runs_land_near_the_published_anchors(truth96, climate96):
    # DAPPER: OI 0.95, 3D-Var 0.41, LETKF (7, radius 4) 0.22; 20 % here.
    mean, cov = climate96
    methods = {
        0.95: OptimalInterpolation(mean, cov),
        0.41: ThreeDVar(cov, inflation=0.02),
        0.22: LETKF(7, inflation=1.05, localization_radius=4),
    }
    for anchor, method in methods.items():
        result = twin96(method, truth96)
        # the time mean of each cycle's RMSE, DAPPER's rmse.a
        assert result.analysis_error.mean() == pytest.approx(anchor, rel=0.2)
        np.testing.assert_allclose(np.sqrt((result.analysis_error**2).mean(axis=1)),
                                   result.analysis_rmse)


def test_sparser_networks_and_longer_intervals_cost_accuracy(truth96):
    method = LETKF(10, inflation=1.05, localization_radius=4)
    every_other = twin96(method, truth96, obs_operator=np.arange(0, 40, 2),
                         n_burn_in=50, n_cycles=100)
    all_sites = twin96(method, truth96, n_burn_in=50, n_cycles=100)
    twice_the_interval = twin96(method, truth96, obs_every=2, n_burn_in=50,
                                n_cycles=100)
    assert all_sites.analysis_error.mean() < every_other.analysis_error.mean() < 1.0
    assert all_sites.analysis_error.mean() < twice_the_interval.analysis_error.mean()


def test_initial_spread_zero_starts_at_the_truth(truth96):
    result = twin96(ETKF(3), truth96, initial_spread=0.0, n_burn_in=0, n_cycles=1,
                    return_series=True)
    np.testing.assert_allclose(result.background[:, 0], result.truth[:, 0],
                               atol=1e-12)


# -- rank histogram ---------------------------------------------------------------


def test_rank_histogram_counts_ranks_and_is_flat_when_calibrated():
    np.testing.assert_array_equal(
        rank_histogram([[[0.0, 5.0], [1.0, 6.0], [2.0, 7.0]]], [[1.5, 9.0]]),
        [0, 0, 1, 1],
    )
    rng = np.random.default_rng(0)
    counts = rank_histogram(rng.normal(size=(2000, 9, 5)), rng.normal(size=(2000, 5)))
    assert counts.sum() == 10_000
    np.testing.assert_allclose(counts / 1000, 1.0, atol=0.12)


# -- diffusion ensembles of fields ----------------------------------------------------


@pytest.fixture(scope="module")
def conv_featurizer():
    from skdiffusion import DiffusionFeaturizer

    data = make_lorenz96(1, 300, dt=DT, random_state=0)
    featurizer = DiffusionFeaturizer(architecture="conv", n_hidden=8, n_blocks=1,
                                     time_embedding_dim=16, max_iter=5,
                                     batch_size=64, random_state=0)
    return featurizer.fit(data.X), data


def test_diffusion_ensemble_of_fields_in_one_batch(conv_featurizer, truth96):
    featurizer, data = conv_featurizer
    sampler = DiffusionEnsemble(featurizer, tau=50, n_members=5,
                                shift=data.shift, scale=data.scale)
    members = sampler.sample_ensemble(truth96[:, 0], random_state=0)
    assert members.shape == (2, 5, 40) and np.all(np.isfinite(members))
    assert members.std(axis=1).mean() > 0.01
    still = sampler.set_params(tau=0).sample_ensemble(truth96[:, 0], random_state=0)
    np.testing.assert_allclose(still, np.repeat(truth96[:, :1], 5, axis=1), atol=1e-4)
    method = EnOI(sampler.set_params(tau=50), localization_radius=4)
    result = twin96(method, truth96, n_burn_in=2, n_cycles=3)
    assert np.all(np.isfinite(result.analysis_error))


# -- bad input ------------------------------------------------------------------------


def test_array_defaults_are_none_so_repr_and_clone_work():
    for settings in [ThreeDVar(), StaticCovarianceEnsemble()]:
        assert "covariance" not in repr(settings)
        assert clone(settings).get_params()["covariance"] is None
        assert "inflation=2.0" in repr(clone(settings).set_params(inflation=2.0))
    # None is the paper's matrix, resolved at use.
    np.testing.assert_allclose(ThreeDVar().static_covariance(), LORENZ63_B_FULL)
    members = StaticCovarianceEnsemble(n_members=4000).sample_ensemble(
        np.zeros((1, 3)), random_state=0)
    np.testing.assert_allclose(np.cov(members[0].T), LORENZ63_B_DIAGONAL, atol=0.1)


def test_a_method_given_by_name_says_what_a_method_is():
    truth = make_lorenz63(1, 101, random_state=0).trajectories
    with pytest.raises(ValueError, match="method must be an assimilation method.*EnOI"):
        run_twin_experiment("enoi", truth)


class _Copies:
    """A featurizer stand-in whose ensembles are copies of the input."""

    n_diffusion_steps = 1000

    def sample_ensemble(self, X, tau, n_members, **kwargs):
        return np.repeat(np.asarray(X)[:, None], n_members, axis=1)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"scale": -np.ones(3)}, "scale must be positive"),
        ({"scale": np.ones(2)}, r"scale must have shape \(3,\)"),
        ({"shift": np.zeros(4)}, r"shift must have shape \(3,\)"),
        ({"scale": [1.0, np.nan, 1.0]}, "scale contains NaN"),
    ],
)
def test_diffusion_ensemble_rejects_a_bad_scale_or_shift(params, message):
    sampler = DiffusionEnsemble(_Copies(), n_members=2, **params)
    with pytest.raises(ValueError, match=message):
        sampler.sample_ensemble(np.zeros((1, 3)))


@pytest.mark.parametrize(
    ("scale", "message"),
    [(np.zeros(3), "scale must be positive"),
     (np.ones(2), r"scale must have shape \(3,\)")],
)
def test_twin_experiment_rejects_a_zero_or_wrong_length_scale(scale, message):
    truth = make_lorenz63(1, 101, random_state=0).trajectories
    with pytest.raises(ValueError, match=message):
        run_twin_experiment(ThreeDVar(), truth, n_burn_in=1, scale=scale)


def test_bad_localisation_settings_raise():
    ens = ensemble96(n=1)
    with pytest.raises(ValueError, match="localization_radius"):
        letkf_analysis(ens, np.zeros((1, 40)), obs_error_std=1.0,
                       localization_radius=0)
    with pytest.raises(ValueError, match="localization_radius"):
        LETKF(localization_radius=-1).assimilate(ens, np.zeros((1, 40)),
                                                 obs_operator=None, obs_error_std=1.0)
    with pytest.raises(ValueError, match="radius"):
        gaspari_cohn([1.0], radius=0)


# -- the experiment and its command line ---------------------------------------------


def test_anchor_table_has_every_published_method():
    from skdiffusion.experiments import Lorenz96AssimilationPreset, lorenz96_anchors

    preset = Lorenz96AssimilationPreset(n_climate_steps=2_000, n_anchor_experiments=2,
                                        n_anchor_burn_in=20, n_anchor_cycles=20)
    table = lorenz96_anchors(preset)
    assert list(table.method) == ["climatology", "optimal interpolation", "3D-Var",
                                  "LETKF (7)", "ETKF (24)"]
    np.testing.assert_allclose(table.anchor, [3.6, 0.95, 0.41, 0.22, 0.18])
    np.testing.assert_allclose(table.ratio, table.analysis_rmse / table.anchor)
    # climatology and optimal interpolation need no spin-up: near at once
    np.testing.assert_allclose(table.ratio[:2], 1.0, atol=0.1)


def test_command_line_prints_anchors_scores_and_rank_histograms(monkeypatch, capsys):
    import pandas as pd

    from skdiffusion.experiments import __main__ as cli
    from skdiffusion.experiments import assimilation_lorenz96 as module

    anchors = pd.DataFrame({"method": ["3D-Var"], "anchor": [0.41],
                            "analysis_rmse": [0.4], "ratio": [0.4 / 0.41]})
    table = pd.DataFrame({"stage": ["tuning", "test"], "network": ["all sites"] * 2,
                          "method": ["diffusion EnOI"] * 2,
                          "analysis_rmse": [0.5, 0.39]})
    table.attrs.update(rank_histograms={"all sites": np.array([1, 4, 1])},
                       fit_seconds=12.0)
    monkeypatch.setattr(module, "lorenz96_anchors", lambda *a, **k: anchors)
    monkeypatch.setattr(module, "lorenz96_assimilation", lambda *a, **k: table)
    cli.main(["--experiment", "assimilation96", "--quiet"])
    out = capsys.readouterr().out
    assert "Published anchors (DAPPER)" in out and "featurizer fit 12 s" in out
    assert "0.390" in out and "0.500" not in out  # test rows only
    assert "first 0.50, middle 2.00, last 0.50" in out
    with pytest.raises(SystemExit):
        cli.main(["--experiment", "assimilation96", "--preset", "gpu"])
