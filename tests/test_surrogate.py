import warnings

import joblib
import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn import config_context
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.exceptions import NotFittedError, UnsetMetadataPassedError
from sklearn.linear_model import LinearRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import PolynomialFeatures, StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from skdiffusion.datasets import make_lorenz96, normalize_states
from skdiffusion.linear_model import StreamingRidge, StreamingRidgeCV
from skdiffusion.metrics import nrmse
from skdiffusion.spatial import PeriodicPatches, SiteWiseRegressor
from skdiffusion.surrogate import SurrogateForecaster

ROTATION = np.array([[0.9, -0.3], [0.3, 0.9]])  # a damped rotation


def linear_system(n_samples=100, matrix=ROTATION, seed=0):
    X = np.random.default_rng(seed).normal(size=(n_samples, len(matrix)))
    return X, X @ matrix.T


class InfiniteAbove(RegressorMixin, BaseEstimator):
    """Predicts a zero increment, or infinity where the first variable > 0.5."""

    def fit(self, X, y):
        self.n_outputs_ = np.shape(y)[1]
        return self

    def predict(self, X):
        increment = np.zeros((len(X), self.n_outputs_))
        increment[X[:, 0] > 0.5] = np.inf
        return increment


@parametrize_with_checks([SurrogateForecaster(Ridge())])
def test_sklearn_compatible(estimator, check):
    check(estimator)


def test_regressor_learns_the_increment_and_predict_gives_the_next_state():
    X, y = linear_system()
    model = SurrogateForecaster(LinearRegression()).fit(X, y)
    assert_allclose(model.regressor_.coef_, ROTATION - np.eye(2), atol=1e-12)
    assert_allclose(model.predict(X), y, atol=1e-12)
    assert model.n_state_features_ == 2
    assert model.n_features_in_ == 2


def test_regressor_is_cloned():
    ridge = Ridge()
    model = SurrogateForecaster(ridge).fit(*linear_system())
    assert model.regressor_ is not ridge
    assert not hasattr(ridge, "coef_")


def test_forecast_of_a_linear_map_applies_its_powers():
    X, y = linear_system()
    model = SurrogateForecaster(LinearRegression()).fit(X, y)
    trajectories = model.forecast(X[:5], n_steps=20)
    assert trajectories.shape == (5, 21, 2)
    assert_array_equal(trajectories[:, 0], X[:5])
    for step in (1, 7, 20):
        expected = X[:5] @ np.linalg.matrix_power(ROTATION, step).T
        assert_allclose(trajectories[:, step], expected, atol=1e-10)


def test_forecast_keeps_float32():
    X, y = linear_system()
    model = SurrogateForecaster(LinearRegression()).fit(X, y)
    assert model.forecast(X[:3].astype(np.float32), 4).dtype == np.float32


def test_forecast_marks_trajectories_that_leave_the_bound_and_warns():
    X, y = linear_system(matrix=2 * np.eye(2))  # doubles each step
    model = SurrogateForecaster(LinearRegression()).fit(X, y)
    X0 = np.array([[0.0, 0.0], [1.0, 0.0]])
    with pytest.warns(RuntimeWarning, match="1 of 2 forecast trajectories blew up"):
        trajectories = model.forecast(X0, n_steps=10)
    assert_allclose(trajectories[0], 0.0, atol=1e-12)  # the fixed point goes on
    blown_up = np.isnan(trajectories[1, :, 0])
    first_nan = np.argmax(blown_up)
    # 2**k leaves 10 training standard deviations (about 20) at k = 5
    assert first_nan == 5
    assert np.all(blown_up[first_nan:]) and not np.any(blown_up[:first_nan])
    assert_allclose(trajectories[1, :first_nan, 0], 2.0 ** np.arange(first_nan))


def test_blowup_threshold_none_keeps_large_finite_states():
    X, y = linear_system(matrix=2 * np.eye(2))
    model = SurrogateForecaster(LinearRegression(), blowup_threshold=None)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        trajectories = model.fit(X, y).forecast([[1.0, 0.0]], n_steps=30)
    assert_allclose(trajectories[0, -1, 0], 2.0**30, rtol=1e-6)


def test_forecast_marks_non_finite_states_and_never_raises():
    X, y = linear_system()
    model = SurrogateForecaster(InfiniteAbove(), blowup_threshold=None).fit(X, y)
    X0 = np.array([[0.0, 1.0], [1.0, 1.0], [0.2, 0.0]])
    with pytest.warns(RuntimeWarning, match="1 of 3"):
        trajectories = model.forecast(X0, n_steps=3)
    assert np.all(np.isnan(trajectories[1, 1:]))
    assert_array_equal(trajectories[[0, 2]], np.repeat(X0[[0, 2], None], 4, axis=1))


def test_no_warning_when_nothing_blows_up():
    model = SurrogateForecaster(LinearRegression()).fit(*linear_system())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.forecast(np.ones((3, 2)), n_steps=50)


def test_extra_columns_of_X_are_constant_inputs():
    # x' = 0.5 x + f: the second column f is a forcing the forecast keeps.
    rng = np.random.default_rng(0)
    X = rng.normal(size=(100, 2))
    y = 0.5 * X[:, 0] + X[:, 1]
    model = SurrogateForecaster(LinearRegression()).fit(X, y)
    assert model.n_state_features_ == 1
    assert model.predict(X).shape == (100,)
    trajectories = model.forecast([[0.0, 1.0]], n_steps=30)
    assert_array_equal(trajectories[0, :, 1], 1.0)
    assert_allclose(trajectories[0, -1, 0], 2.0, atol=1e-6)  # fixed point 2 f


def test_works_with_a_pipeline():
    X, y = linear_system()
    pipeline = make_pipeline(StandardScaler(), Ridge(alpha=1e-8))
    model = SurrogateForecaster(pipeline).fit(X, y)
    assert_allclose(model.predict(X), y, atol=1e-6)
    assert model.forecast(X[:2], 3).shape == (2, 4, 2)


def test_joblib_round_trip(tmp_path):
    X, y = linear_system()
    model = SurrogateForecaster(Ridge()).fit(X, y)
    joblib.dump(model, tmp_path / "model.joblib")
    loaded = joblib.load(tmp_path / "model.joblib")
    assert_array_equal(loaded.forecast(X[:3], 5), model.forecast(X[:3], 5))


def test_verbose_reports_progress_and_silent_otherwise(capsys):
    X, y = linear_system()
    SurrogateForecaster(Ridge()).fit(X, y).forecast(X[:2], 10)
    assert capsys.readouterr() == ("", "")
    SurrogateForecaster(Ridge(), verbose=True).fit(X, y).forecast(X[:2], 10)
    out, err = capsys.readouterr()
    assert out == "" and "SurrogateForecaster.forecast: 10/10 step" in err


def test_forecast_reports_its_steps_not_those_of_the_regressor(capsys):
    X, y = linear_system()
    regressor = StreamingRidge(chunk_size=1, verbose=True)
    model = SurrogateForecaster(regressor, verbose=True).fit(X, y)
    assert "StreamingRidge.fit" in capsys.readouterr().err
    model.forecast(X[:2], 10)
    lines = capsys.readouterr().err.splitlines()
    assert lines and all(
        line.startswith("SurrogateForecaster.forecast: ") for line in lines
    )
    assert lines[-1].startswith("SurrogateForecaster.forecast: 10/10 step")


@pytest.mark.parametrize(
    "case", ["other width", "other column names", "y wider than X"]
)
def test_a_failed_refit_leaves_every_fitted_attribute_as_it_was(case):
    pd = pytest.importorskip("pandas")
    X, y = linear_system()
    frame = pd.DataFrame(X, columns=["u", "v"])
    model = SurrogateForecaster(Ridge()).fit(frame, y)
    prediction, forecast = model.predict(frame), model.forecast(frame[:3], 5)
    nan_y = y.copy()
    nan_y[-1, 0] = np.nan
    X_bad, y_bad = {
        "other width": (np.c_[X, X], nan_y),
        "other column names": (frame.set_axis(["p", "q"], axis=1), nan_y),
        "y wider than X": (frame[["u"]], y),  # fails after validation
    }[case]
    with pytest.raises(ValueError):
        model.fit(X_bad, y_bad)
    assert_array_equal(model.predict(frame), prediction)
    assert_array_equal(model.forecast(frame[:3], 5), forecast)
    assert model.n_features_in_ == 2
    assert_array_equal(model.feature_names_in_, ["u", "v"])


@pytest.mark.parametrize(
    "X, y, match",
    [
        (np.zeros((5, 2)), np.zeros((4, 2)), "inconsistent numbers of samples"),
        (np.zeros((5, 2)), np.array([[0.0, 0.0]] * 4 + [[np.nan, 0.0]]), "y"),
        (np.zeros((5, 2)), np.array([[0.0, 0.0]] * 4 + [[np.inf, 0.0]]), "y"),
        (np.zeros((5, 2)), np.zeros((5, 3)), "y has 3 columns but X only 2"),
    ],
)
def test_fit_bad_input(X, y, match):
    model = SurrogateForecaster(Ridge()).fit(*linear_system())
    before = model.predict(np.ones((1, 2)))
    with pytest.raises(ValueError, match=match):
        model.fit(X, y)
    assert_array_equal(model.predict(np.ones((1, 2))), before)  # unchanged


@pytest.mark.parametrize(
    "X0, n_steps, match",
    [
        (np.zeros((2, 2)), 0, "n_steps"),
        (np.zeros((2, 2)), -3, "n_steps"),
        (np.zeros((2, 2)), 2.5, "n_steps"),
        (np.zeros((2, 2)), "3", "n_steps"),
        (None, 3, "X0"),
        (np.zeros(2), 3, "Expected 2D array"),
        (np.zeros((2, 2, 1)), 3, "dim 3"),
        (np.zeros((2, 3)), 3, "X has 3 features"),
        (np.array([[0.0, np.nan]]), 3, "NaN"),
    ],
)
def test_forecast_bad_input(X0, n_steps, match):
    model = SurrogateForecaster(Ridge()).fit(*linear_system())
    with pytest.raises(ValueError, match=match):
        model.forecast(X0, n_steps)


def test_forecast_before_fit():
    with pytest.raises(NotFittedError):
        SurrogateForecaster(Ridge()).forecast(np.zeros((1, 2)), 1)


# --- fields on a ring of any size ---------------------------------------------


def doubling_on_a_ring():
    """Each site doubles: fitted on rings of 2 sites whose next states are
    +-2, so the pooled mean is 0 and the pooled scale 2."""
    X = np.array([[1.0, -1.0], [-1.0, 1.0]])
    return SurrogateForecaster(SiteWiseRegressor(LinearRegression()), ring=True).fit(
        X, 2 * X
    )


def test_ring_uses_one_mean_and_scale_for_all_sites():
    X = np.array([[0.0, 0.0], [1.0, 1.0]])
    y = np.array([[0.0, 0.0], [2.0, 4.0]])
    model = SurrogateForecaster(SiteWiseRegressor(Ridge()), ring=True).fit(X, y)
    # over the four values 0, 0, 2, 4
    assert_allclose(model.state_mean_, [1.5])
    assert_allclose(model.state_scale_, [np.sqrt(2.75)])
    per_variable = SurrogateForecaster(Ridge()).fit(X, y)
    assert_allclose(per_variable.state_mean_, [1.0, 2.0])


def test_ring_predicts_and_forecasts_rings_of_other_sizes(tmp_path):
    model = doubling_on_a_ring()
    assert_allclose(model.predict(np.ones((3, 7))), 2.0)
    X0 = np.array([[0.1, 0.0, -0.1, 0.2, 0.0]])
    trajectories = model.forecast(X0, n_steps=3)
    assert trajectories.shape == (1, 4, 5)
    assert_allclose(trajectories[0], X0 * 2.0 ** np.arange(4)[:, None])
    joblib.dump(model, tmp_path / "ring.joblib")
    loaded = joblib.load(tmp_path / "ring.joblib")
    assert_array_equal(loaded.forecast(X0, n_steps=3), trajectories)


def test_ring_blowup_test_on_another_ring_size():
    model = doubling_on_a_ring()
    X0 = np.zeros((2, 5))
    X0[1, 3] = 1.0
    with pytest.warns(RuntimeWarning, match="1 of 2 forecast trajectories blew up"):
        trajectories = model.forecast(X0, n_steps=8)
    # 2**k leaves 10 pooled standard deviations (20) at k = 5
    first_nan = np.argmax(np.isnan(trajectories[1, :, 0]))
    assert first_nan == 5
    assert_array_equal(trajectories[0], 0.0)


def test_ring_needs_every_column_to_be_a_site():
    X = np.random.default_rng(0).normal(size=(10, 3))
    with pytest.raises(ValueError, match="ring=True"):
        SurrogateForecaster(Ridge(), ring=True).fit(X, X[:, :2])


def test_a_fixed_width_model_still_rejects_other_widths():
    X, y = linear_system()
    model = SurrogateForecaster(SiteWiseRegressor(LinearRegression())).fit(X, y)
    with pytest.raises(ValueError, match="X has 4 features"):
        model.forecast(np.ones((1, 4)), 2)


def test_ring_changed_after_fit_raises_until_refit():
    model = doubling_on_a_ring()
    model.set_params(ring=False)
    with pytest.raises(ValueError, match="ring"):
        model.predict(np.ones((1, 2)))
    model.fit(np.eye(2), 2 * np.eye(2))
    assert model.predict(np.ones((1, 2))).shape == (1, 2)


def test_lorenz96_model_of_40_sites_forecasts_80_sites():
    # a local quadratic model of the one-step increment, shared by all sites
    train = make_lorenz96(2, 300, lead_steps=1, burn_in=500, random_state=0)
    head = make_pipeline(PolynomialFeatures(2), LinearRegression())
    local = make_pipeline(PeriodicPatches(radius=2), SiteWiseRegressor(head))
    model = SurrogateForecaster(local, ring=True).fit(train.X, train.X + train.y)
    errors = {}
    for n_dim in (40, 80):
        test = make_lorenz96(2, 60, n_dim=n_dim, lead_steps=1, burn_in=500,
                             random_state=1)
        truth = normalize_states(test.trajectories, test.shift, test.scale)
        forecast = model.forecast(truth[:, 0], n_steps=59)
        assert forecast.shape == (2, 60, n_dim)
        errors[n_dim] = nrmse(truth, forecast, std=1.0)
    # measured: 0.0020 one step ahead, 0.085 after 59 steps (40 sites);
    # 0.0015 and 0.073 on 80 sites
    assert errors[40][1] < 0.01 and errors[40][-1] < 0.2
    assert errors[80][1] < 1.5 * errors[40][1]
    assert errors[80][-1] < 1.5 * errors[40][-1]


def test_conv_featurizer_and_site_wise_ridge_forecast_another_ring_size():
    pytest.importorskip("torch")
    from skdiffusion import DiffusionFeaturizer, StreamingRidgeCV

    train = make_lorenz96(1, 200, lead_steps=5, burn_in=500, random_state=0)
    featurizer = DiffusionFeaturizer(
        architecture="conv", kernel_size=3, n_hidden=8, n_blocks=1,
        time_embedding_dim=8, feature_times=(0, 100), max_iter=2, random_state=0,
    )
    model = SurrogateForecaster(
        make_pipeline(featurizer, SiteWiseRegressor(StreamingRidgeCV())), ring=True
    ).fit(train.X, train.X + train.y)
    assert model.regressor_[-1].n_site_features_ == 16  # 2 times x 8 channels
    trajectories = model.forecast(np.zeros((2, 80)) + train.X[:2, :1], n_steps=3)
    assert trajectories.shape == (2, 4, 80) and np.all(np.isfinite(trajectories))
    # the same state on every site stays uniform: translation equivariance
    last = trajectories[:, -1]
    assert_allclose(last, np.broadcast_to(last[:, :1], last.shape), rtol=1e-5)


# --- what y holds, constant inputs, groups, one row ---------------------------


def lorenz63_pairs():
    from skdiffusion.datasets import make_lorenz63

    data = make_lorenz63(2, 300, burn_in=500, random_state=0)
    return data.X, data.y, data.groups


def test_increment_targets_fit_the_same_model_and_predict_increments():
    X, increment, _ = lorenz63_pairs()
    by_state = SurrogateForecaster(Ridge(1e-3)).fit(X, X + increment)
    by_increment = SurrogateForecaster(Ridge(1e-3), target="increment")
    by_increment.fit(X, increment)
    assert_allclose(by_increment.predict(X), by_state.predict(X) - X, atol=1e-10)
    assert_allclose(by_increment.forecast(X[:3], 5), by_state.forecast(X[:3], 5))
    assert_allclose(by_increment.state_mean_, by_state.state_mean_)
    by_increment.set_params(target="next_state")
    with pytest.raises(ValueError, match="target"):
        by_increment.predict(X)


def test_increments_passed_as_next_states_get_a_warning():
    X, increment, _ = lorenz63_pairs()
    with pytest.warns(UserWarning, match="looks like increments") as record:
        SurrogateForecaster(Ridge()).fit(X, increment)
    assert record[0].filename == __file__
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        SurrogateForecaster(Ridge()).fit(X, X + increment)
        SurrogateForecaster(Ridge(), target="increment").fit(X, increment)


def test_narrower_y_warns_that_the_other_columns_are_constant_inputs():
    X, y = linear_system()
    forcing = np.c_[X, np.full(len(X), 8.0)]
    with pytest.warns(UserWarning, match="last 1 columns of X are taken as constant"):
        model = SurrogateForecaster(LinearRegression()).fit(forcing, y)
    assert_allclose(model.forecast(forcing[:2], 3)[:, :, 2], 8.0)


def test_groups_reach_a_streaming_ridge_cv_directly_or_in_a_pipeline():
    X, increment, groups = lorenz63_pairs()
    alphas = (1e-6, 1e-3, 1.0)
    ridge = StreamingRidgeCV(alphas, validation_fraction=0.5, random_state=0)
    expected = clone(ridge).fit(X, increment, groups=groups)
    direct = SurrogateForecaster(ridge, target="increment")
    direct.fit(X, increment, groups=groups)
    assert_allclose(direct.regressor_.mse_path_, expected.mse_path_)
    piped = SurrogateForecaster(make_pipeline(StandardScaler(), ridge),
                                target="increment").fit(X, increment, groups=groups)
    scaled = StandardScaler().fit_transform(X)
    by_hand = clone(ridge).fit(scaled, increment, groups=groups)
    assert_allclose(piped.regressor_[-1].mse_path_, by_hand.mse_path_)
    # without groups another split is held out: a different path
    assert not np.allclose(
        clone(ridge).fit(X, increment).mse_path_, expected.mse_path_
    )
    with pytest.raises(ValueError, match="Ridge.fit takes no groups"):
        SurrogateForecaster(Ridge()).fit(X, X + increment, groups=groups)


def test_groups_follow_sklearn_metadata_routing_when_enabled():
    X, increment, groups = lorenz63_pairs()
    ridge = StreamingRidgeCV((1e-6, 1.0), validation_fraction=0.5, random_state=0)
    expected = clone(ridge).fit(X, increment, groups=groups)
    with config_context(enable_metadata_routing=True):
        requested = clone(ridge).set_fit_request(groups=True)
        model = SurrogateForecaster(requested, target="increment")
        model.fit(X, increment, groups=groups)
        assert_allclose(model.regressor_.mse_path_, expected.mse_path_)
        with pytest.raises(UnsetMetadataPassedError):
            SurrogateForecaster(clone(ridge), target="increment").fit(
                X, increment, groups=groups
            )


def test_one_row_is_refused():
    with pytest.raises(ValueError, match="1 sample"):
        SurrogateForecaster(Ridge()).fit(np.ones((1, 3)), np.ones((1, 3)))
