import numpy as np
import pytest
from numpy.testing import assert_allclose
from sklearn.linear_model import LinearRegression, Ridge
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score
from sklearn.neighbors import NearestNeighbors

from skdiffusion.datasets import (
    make_lorenz63,
    normalize_states,
    pairs_from_trajectories,
)
from skdiffusion.metrics import (
    LYAPUNOV_EXPONENTS,
    extreme_fraction,
    hellinger_distance,
    make_nrmse_scorer,
    make_rollout_scorer,
    make_vpt_scorer,
    nearest_neighbour_distances,
    neg_nrmse_scorer,
    nrmse,
    valid_prediction_time,
)
from skdiffusion.surrogate import SurrogateForecaster


def normalised_trajectories(n_trajectories, n_steps, seed):
    data = make_lorenz63(n_trajectories, n_steps, burn_in=1000, random_state=seed)
    return normalize_states(data.trajectories, data.shift, data.scale)


@pytest.fixture(scope="module")
def truth():
    return normalised_trajectories(200, 1000, seed=0)


# --- nrmse -----------------------------------------------------------------


def test_nrmse_of_a_perfect_forecast_is_zero(truth):
    score = nrmse(truth, truth.copy())
    assert score.shape == (truth.shape[1],)
    assert np.all(score == 0)


def test_nrmse_of_an_independent_climate_state_is_sqrt2(truth):
    # A forecast by another trajectory of the same climate: errors have twice
    # the climatological variance at every lead time.
    other = normalised_trajectories(200, 1000, seed=1)
    score = nrmse(truth, other)
    assert_allclose(score[500:].mean(), np.sqrt(2), rtol=0.05)
    assert_allclose(nrmse(truth, other, std=1.0)[500:].mean(), np.sqrt(2), rtol=0.05)


def test_persistence_nrmse_grows_from_zero_to_sqrt2(truth):
    persistence = np.repeat(truth[:, :1], truth.shape[1], axis=1)
    score = nrmse(truth, persistence)
    assert score[0] == 0
    assert 0 < score[1] < score[10] < score[100]  # 0.01, 0.1 and 1 MTU
    assert_allclose(score[500:].mean(), np.sqrt(2), rtol=0.05)


def test_nrmse_known_value_and_per_feature_std():
    truth = np.zeros((4, 2, 2))
    forecast = truth + np.array([3.0, 0.0])  # error 3 in the first feature only
    # mean over features of (3 / std)^2 = 9 / 4 / 2
    assert_allclose(nrmse(truth, forecast, std=[2.0, 1.0]), [np.sqrt(9 / 8)] * 2)
    assert_allclose(nrmse(truth, forecast, std=1.0), [np.sqrt(9 / 2)] * 2)


def test_nrmse_default_std_is_the_std_of_y_true():
    rng = np.random.default_rng(0)
    truth = rng.normal(scale=[1.0, 10.0], size=(50, 3, 2))
    forecast = truth + rng.normal(size=truth.shape)
    std = truth.reshape(-1, 2).std(axis=0)
    assert_allclose(nrmse(truth, forecast), nrmse(truth, forecast, std=std))


def test_nrmse_of_one_lead_time_is_a_float():
    y = np.arange(6.0).reshape(3, 2)
    assert isinstance(nrmse(y, y + 1.0, std=1.0), float)
    assert nrmse(y, y + 1.0, std=1.0) == pytest.approx(1.0)
    assert nrmse(y[:, 0], y[:, 0] + 2.0, std=1.0) == pytest.approx(2.0)


def test_nrmse_nan_policy():
    truth = np.zeros((2, 3, 1))
    forecast = np.array([[0.0, 1.0, np.nan], [0.0, 1.0, 3.0]])[:, :, None]
    assert_allclose(nrmse(truth, forecast, std=1.0), [0.0, 1.0, np.nan])
    assert_allclose(nrmse(truth, forecast, std=1.0, nan_policy="omit"), [0.0, 1.0, 3.0])
    all_nan = np.full_like(truth, np.nan)
    assert np.all(np.isnan(nrmse(truth, all_nan, std=1.0, nan_policy="omit")))


@pytest.mark.parametrize(
    "y_true, y_pred, kwargs, match",
    [
        (np.zeros((3, 2)), np.zeros((3, 3)), {}, "same shape"),
        (np.zeros((3, 2, 2, 2)), np.zeros((3, 2, 2, 2)), {}, "y_true must have shape"),
        (np.ones((3, 2)), np.ones((3, 2)), {}, "std must be positive"),
        (np.zeros((3, 2)), np.zeros((3, 2)), {"std": -1.0}, "std"),
        (np.zeros((3, 2)), np.full((3, 2), np.inf), {"std": 1.0}, "infinity"),
        (np.zeros((3, 2)), np.zeros((3, 2)), {"nan_policy": "raise"}, "nan_policy"),
    ],
)
def test_nrmse_bad_input(y_true, y_pred, kwargs, match):
    with pytest.raises(ValueError, match=match):
        nrmse(y_true, y_pred, **kwargs)


# --- scorers ---------------------------------------------------------------


def test_scorer_is_minus_the_one_step_nrmse():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    y = X @ rng.normal(size=(3, 3)) + 0.1 * rng.normal(size=(60, 3))
    model = Ridge().fit(X, y)
    assert neg_nrmse_scorer(model, X, y) == pytest.approx(-nrmse(y, model.predict(X)))
    scorer = make_nrmse_scorer(std=2.0)
    assert scorer(model, X, y) == pytest.approx(-nrmse(y, model.predict(X), std=2.0))


def test_scorer_selects_the_smaller_error_in_a_search():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    y = X @ rng.normal(size=(3, 3))
    search = GridSearchCV(Ridge(), {"alpha": [1e3, 1e-3]}, scoring=neg_nrmse_scorer)
    search.fit(X, y)
    assert search.best_params_ == {"alpha": 1e-3}
    assert np.all(search.cv_results_["mean_test_score"] <= 0)
    scores = cross_val_score(Ridge(alpha=1e-3), X, y, scoring=make_nrmse_scorer())
    assert np.all(-scores < 1e-3)


# --- valid prediction time -------------------------------------------------


def rollouts_with_errors(errors):
    """Truth 0 and forecasts off by ``errors`` (n_rollouts, n_leads), 1 feature."""
    errors = np.asarray(errors, dtype=float)
    return np.zeros(errors.shape + (1,)), errors[:, :, None]


def test_vpt_is_the_first_lead_beyond_the_threshold_median_over_rollouts():
    truth, forecast = rollouts_with_errors(
        [[0.0, 0.1, 0.3, 0.6, 0.2],  # beyond 0.5 at lead 3, back below later
         [0.0, 0.2, 0.4, 0.5, 0.5],  # never beyond (0.5 is not): full horizon 4
         [0.0, 0.7, 0.1, 0.1, 0.1]]  # beyond at lead 1
    )
    per_rollout = valid_prediction_time(truth, forecast, dt=0.1, std=1.0,
                                        per_rollout=True)
    assert_allclose(per_rollout, [0.3, 0.4, 0.1])
    assert valid_prediction_time(truth, forecast, dt=0.1, std=1.0) == pytest.approx(0.3)
    strict = valid_prediction_time(truth, forecast, dt=0.1, std=1.0, threshold=0.05,
                                   per_rollout=True)
    assert_allclose(strict, [0.1, 0.1, 0.1])


def test_vpt_in_lyapunov_times_multiplies_by_the_exponent():
    truth, forecast = rollouts_with_errors([[0.0, 0.0, 1.0]])
    mtu = valid_prediction_time(truth, forecast, dt=0.5, std=1.0)
    assert mtu == 1.0
    lyapunov = LYAPUNOV_EXPONENTS["lorenz96"]
    in_lyapunov_times = valid_prediction_time(
        truth, forecast, dt=0.5, std=1.0, lyapunov_exponent=lyapunov
    )
    assert in_lyapunov_times == pytest.approx(1.68)
    assert LYAPUNOV_EXPONENTS["lorenz63"] == 0.906


def test_lyapunov_exponents_cannot_be_changed():
    with pytest.raises(TypeError):
        LYAPUNOV_EXPONENTS["lorenz63"] = 1.0


def test_vpt_counts_a_blown_up_rollout_as_beyond_the_threshold():
    truth, forecast = rollouts_with_errors([[0.0, 0.1, np.nan, np.nan]])
    assert valid_prediction_time(truth, forecast, dt=1.0, std=1.0) == 2.0


def test_vpt_normalises_like_nrmse_over_the_features():
    truth = np.zeros((1, 3, 2))
    forecast = np.zeros((1, 3, 2))
    forecast[0, 1] = [0.4, 1.2]  # sqrt((0.4**2 + (1.2 / 2)**2) / 2) = 0.51
    forecast[0, 2] = [0.6, 0.0]  # sqrt(0.36 / 2) = 0.42
    kwargs = dict(dt=1.0, std=[1.0, 2.0], per_rollout=True)
    assert_allclose(valid_prediction_time(truth, forecast, **kwargs), [1.0])
    assert_allclose(valid_prediction_time(truth, forecast, threshold=0.52, **kwargs),
                    [2.0])  # never beyond 0.52: the horizon


def test_vpt_of_each_rollout_agrees_with_its_nrmse_curve(truth):
    rng = np.random.default_rng(0)
    growth = np.exp(np.linspace(-5, 1, truth.shape[1]))[None, :, None]
    forecast = truth[:20] + growth * rng.normal(size=truth[:20].shape)
    vpts = valid_prediction_time(truth[:20], forecast, dt=0.01, std=1.0,
                                 per_rollout=True)
    for rollout, vpt in enumerate(vpts):
        curve = nrmse(truth[rollout : rollout + 1], forecast[rollout : rollout + 1],
                      std=1.0)
        assert vpt == pytest.approx(0.01 * np.argmax(curve > 0.5))
    # the std defaults to that of y_true, as in nrmse
    assert_allclose(
        valid_prediction_time(truth[:20], forecast, dt=0.01, per_rollout=True),
        valid_prediction_time(truth[:20], forecast, dt=0.01, per_rollout=True,
                              std=truth[:20].reshape(-1, 3).std(axis=0)),
    )


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"y_true": np.zeros((2, 3))}, "rollouts of shape"),
        ({"y_pred": np.zeros((2, 3, 2))}, "same shape"),
        ({"dt": 0.0}, "dt"),
        ({"dt": "0.1"}, "dt"),
        ({"threshold": -0.5}, "threshold"),
        ({"lyapunov_exponent": 0.0}, "lyapunov_exponent"),
        ({"std": 0.0}, "std"),
        ({"per_rollout": "yes"}, "per_rollout"),
    ],
)
def test_vpt_bad_input_names_the_argument(kwargs, match):
    arguments = {"y_true": np.zeros((2, 3, 1)), "y_pred": np.zeros((2, 3, 1)),
                 "dt": 0.1, "std": 1.0, **kwargs}
    if arguments["y_true"].ndim == 2:
        arguments["y_pred"] = arguments["y_true"]
    with pytest.raises(ValueError, match=match):
        valid_prediction_time(**arguments)


# --- the VPT scorer ---------------------------------------------------------


def rotation(angle):
    return np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])


def rotation_trajectory(n_states, angle, start=(1.0, 0.0)):
    """States of the unit circle, ``angle`` apart."""
    angles = angle * np.arange(n_states)
    phase = np.arctan2(start[1], start[0])
    return np.c_[np.cos(angles + phase), np.sin(angles + phase)]


def forecaster_of(matrix):
    """A surrogate whose step is exactly ``matrix``."""
    X = np.random.default_rng(0).normal(size=(20, 2))
    return SurrogateForecaster(LinearRegression()).fit(X, X @ matrix.T)


def test_vpt_scorer_by_hand_on_a_rotation_with_the_wrong_angle():
    # The model turns 0.05 rad further per step than the truth: after k steps
    # the error is 2 sin(0.025 k) on the unit circle, an nRMSE (std 1) of
    # sqrt(2) sin(0.025 k), first beyond 0.5 at k = 15 (0.7227 / 0.05 = 14.45).
    model = forecaster_of(rotation(0.25))
    X, y, _ = pairs_from_trajectories([rotation_trajectory(200, 0.2)])
    scorer = make_vpt_scorer(40, 0.1, std=1.0)
    assert scorer(model, X, X + y) == pytest.approx(1.5)
    assert make_vpt_scorer(10, 0.1, std=1.0)(model, X, X + y) == pytest.approx(1.0)
    exact = forecaster_of(rotation(0.2))
    assert scorer(exact, X, X + y) == pytest.approx(4.0)  # the horizon


def test_vpt_scorer_follows_rows_lead_steps_apart():
    # States 0.1 rad apart, the model's step spans 2 of them (0.2 rad).
    model = forecaster_of(rotation(0.25))
    X, y, _ = pairs_from_trajectories([rotation_trajectory(300, 0.1)], lead_steps=2)
    scorer = make_vpt_scorer(40, 0.1, lead_steps=2, std=1.0, n_rollouts=None)
    assert scorer(model, X, X + y) == pytest.approx(1.5)


def test_vpt_scorer_never_links_two_trajectories():
    # A first trajectory too short for a rollout, then one starting elsewhere:
    # linked across the boundary, the truth would jump and the VPT drop.
    model = forecaster_of(rotation(0.25))
    first = rotation_trajectory(30, 0.2)
    second = rotation_trajectory(100, 0.2, start=(0.0, -1.0))
    X, y, _ = pairs_from_trajectories([first, second])
    scores = make_vpt_scorer(40, 0.1, std=1.0, n_rollouts=None)(model, X, X + y)
    assert scores == pytest.approx(1.5)
    with pytest.raises(ValueError, match="n_steps"):
        make_vpt_scorer(100, 0.1, std=1.0)(model, X, X + y)


def test_vpt_scorer_chooses_the_longer_forecast_in_a_search():
    X, y, _ = pairs_from_trajectories([rotation_trajectory(600, 0.2)])
    search = GridSearchCV(
        SurrogateForecaster(Ridge()), {"regressor__alpha": [1e3, 1e-8]},
        scoring=make_vpt_scorer(30, 0.1, lyapunov_exponent=0.5), cv=KFold(3),
    ).fit(X, X + y)
    assert search.best_params_ == {"regressor__alpha": 1e-8}
    assert search.best_score_ == pytest.approx(1.5)  # 3 MTU, 0.5 per MTU
    assert np.all(search.cv_results_["mean_test_score"] <= 1.5)


@pytest.mark.parametrize(
    "kwargs, name",
    [({"n_steps": 0}, "n_steps"), ({"dt": -1.0}, "dt"), ({"lead_steps": 0},
     "lead_steps"), ({"n_rollouts": 0}, "n_rollouts"), ({"threshold": 0.0},
     "threshold")],
)
def test_vpt_scorer_bad_arguments_name_themselves(kwargs, name):
    with pytest.raises(ValueError, match=name):
        make_vpt_scorer(**{"n_steps": 10, "dt": 0.1, **kwargs})


def test_rollout_scorer_by_hand_on_a_rotation_with_the_wrong_angle():
    # After k steps the error is 2 sin(0.025 k) on the unit circle: a mean
    # squared normalised error over the two variables of 2 sin^2(0.025 k).
    model = forecaster_of(rotation(0.25))
    X, y, _ = pairs_from_trajectories([rotation_trajectory(200, 0.2)])
    leads = np.arange(1, 21)
    expected = -np.sqrt(np.mean(2 * np.sin(0.025 * leads) ** 2))
    scorer = make_rollout_scorer(20, std=1.0)
    assert scorer(model, X, X + y) == pytest.approx(expected, rel=1e-6)
    exact = forecaster_of(rotation(0.2))
    assert scorer(exact, X, X + y) == pytest.approx(0.0, abs=1e-9)


def test_rollout_scorer_rolls_out_a_bare_regressor_of_increments():
    # Ridge on the increment, fed x + predict(x), scores like the forecaster
    # that wraps the same Ridge.
    X, y, _ = pairs_from_trajectories([rotation_trajectory(300, 0.2)])
    ridge = Ridge(alpha=1.0).fit(X, y)
    forecaster = SurrogateForecaster(Ridge(alpha=1.0)).fit(X, X + y)
    bare = make_rollout_scorer(15, target="increment")(ridge, X, y)
    wrapped = make_rollout_scorer(15)(forecaster, X, X + y)
    assert bare == pytest.approx(wrapped, rel=1e-9)
    assert bare < -0.01  # the penalty makes the circle shrink: an error


def test_rollout_scorer_holds_the_last_finite_state_of_a_blown_up_rollout():
    class BlowsUpAfterTwoSteps:
        def forecast(self, X0, n_steps):
            out = np.repeat(np.asarray(X0)[:, None], n_steps + 1, axis=1)
            out[:, 1:3] += 1.0
            out[:, 3:] = np.nan
            return out

    X, y, _ = pairs_from_trajectories([np.zeros((50, 2))])
    score = make_rollout_scorer(6, std=1.0)(BlowsUpAfterTwoSteps(), X, X + y)
    assert score == pytest.approx(-1.0)  # error 1 at every lead, held after NaN


def test_rollout_scorer_needs_runs_of_rows():
    X, y, _ = pairs_from_trajectories([rotation_trajectory(30, 0.2)])
    order = np.random.default_rng(0).permutation(len(X))
    with pytest.raises(ValueError, match="contiguous rows"):
        make_rollout_scorer(5)(forecaster_of(rotation(0.2)), X[order], (X + y)[order])
    with pytest.raises(ValueError, match="target"):
        make_rollout_scorer(5, target="state")


def test_rollout_scorer_prefers_the_stable_penalty_in_a_search():
    X, y, _ = pairs_from_trajectories([rotation_trajectory(600, 0.2)])
    search = GridSearchCV(
        SurrogateForecaster(Ridge()), {"regressor__alpha": [1e2, 1e-8]},
        scoring=make_rollout_scorer(30), cv=KFold(3),
    ).fit(X, X + y)
    assert search.best_params_ == {"regressor__alpha": 1e-8}
    assert np.all(search.cv_results_["mean_test_score"] <= 0)


# --- hellinger_distance ----------------------------------------------------


def test_hellinger_of_a_sample_with_itself_is_zero(truth):
    states = truth.reshape(-1, 3)
    assert hellinger_distance(states, states) == 0.0


def test_hellinger_of_disjoint_histograms_is_one():
    X = np.random.default_rng(0).uniform(-3, -1, size=(500, 3))
    assert hellinger_distance(X, X + 3.0) == 1.0
    assert hellinger_distance(X, X + 100.0) == 1.0  # outside the box: disjoint too


def test_hellinger_known_value_and_symmetry():
    X = np.full((4, 1), 0.25)  # all in the first of two bins
    Y = np.array([[0.25], [0.25], [0.75], [0.75]])  # half in each
    expected = np.sqrt(1 - np.sqrt(0.5))
    assert hellinger_distance(X, Y, bins=2, range=(0, 1)) == pytest.approx(expected)
    assert hellinger_distance(Y, X, bins=2, range=(0, 1)) == pytest.approx(expected)


def test_hellinger_matches_numpy_histogramdd(truth):
    rng = np.random.default_rng(0)
    X = truth[:100].reshape(-1, 3)
    Y = rng.normal(size=(20_000, 3))
    bins, box = [70, 50, 30], np.array([(-3.5, 3.5), (-3.0, 3.0), (-4.0, 2.0)])

    def histogram_with_outside_cell(states):
        inside = np.all((states >= box[:, 0]) & (states <= box[:, 1]), axis=1)
        counts = np.histogramdd(states, bins=bins, range=box)[0].ravel()
        return np.append(counts, np.sum(~inside)) / len(states)

    p, q = histogram_with_outside_cell(X), histogram_with_outside_cell(Y)
    expected = np.sqrt(1 - np.sum(np.sqrt(p * q)))
    assert hellinger_distance(X, Y, bins=bins, range=box) == pytest.approx(expected)


def test_hellinger_counts_blown_up_states_as_outside(truth):
    states = truth[:50].reshape(-1, 3)
    blown_up = states.copy()
    blown_up[: len(states) // 2] = np.nan
    assert 0.5 < hellinger_distance(blown_up, states) < 1


def test_hellinger_separates_the_attractor_from_a_gaussian(truth):
    states = truth[:, ::10].reshape(-1, 3)
    other = normalised_trajectories(200, 1000, seed=1)[:, ::10].reshape(-1, 3)
    gaussian = np.random.default_rng(0).normal(size=states.shape)
    assert hellinger_distance(states, other) < 0.5 * hellinger_distance(
        states, gaussian
    )


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"bins": 0}, "bins"),
        ({"range": (1.0, -1.0)}, "range"),
        ({"range": [(0, 1), (0, 1)]}, "range"),
    ],
)
def test_hellinger_bad_input(kwargs, match):
    X = np.zeros((5, 3))
    with pytest.raises(ValueError, match=match):
        hellinger_distance(X, X, **kwargs)
    with pytest.raises(ValueError, match="features"):
        hellinger_distance(X, np.zeros((5, 2)))


# --- nearest_neighbour_distances -------------------------------------------


def test_nearest_neighbour_distances_match_brute_force():
    rng = np.random.default_rng(0)
    generated, reference = rng.normal(size=(300, 3)), rng.normal(size=(200, 3))
    ours = nearest_neighbour_distances(generated, reference)
    brute = [
        np.mean(NearestNeighbors(n_neighbors=1).fit(b).kneighbors(a)[0] ** 2)
        for a, b in [(generated, reference), (reference, generated)]
    ]
    assert_allclose(ours, brute)


def test_nearest_neighbour_distances_show_missing_coverage():
    reference = np.random.default_rng(0).normal(size=(1000, 2))
    one_mode = reference[reference[:, 0] < 0]  # generates only half
    to_reference, from_reference = nearest_neighbour_distances(one_mode, reference)
    assert to_reference == 0.0  # every generated state is a reference state
    assert from_reference > 0.1


def test_scorer_and_distances_reject_bad_arguments_by_name():
    with pytest.raises(ValueError, match="std"):
        make_nrmse_scorer(std="one")
    with pytest.raises(ValueError, match="std"):
        make_nrmse_scorer(std=-1.0)
    with pytest.raises(ValueError, match="n_jobs"):
        nearest_neighbour_distances(np.zeros((2, 1)), np.zeros((2, 1)), n_jobs=1.5)


def test_nearest_neighbour_distances_reject_nan():
    with pytest.raises(ValueError, match="generated"):
        nearest_neighbour_distances(np.full((2, 2), np.nan), np.zeros((2, 2)))


# --- extreme_fraction ------------------------------------------------------


def test_extreme_fraction_of_the_reference_distribution_is_two_percent(truth):
    reference = truth[:100].reshape(-1, 3)
    same_climate = truth[100:].reshape(-1, 3)
    assert extreme_fraction(reference, reference) == pytest.approx(0.02, abs=1e-3)
    assert extreme_fraction(same_climate, reference) == pytest.approx(0.02, abs=0.01)
    assert extreme_fraction(0.5 * reference, reference) < 0.005  # too few extremes


def test_extreme_fraction_known_value_and_quantiles():
    reference = np.arange(101.0)[:, None]
    generated = np.array([[0.5], [50.0], [60.0], [99.5]])
    assert extreme_fraction(generated, reference) == 0.5
    assert extreme_fraction(generated, reference, quantiles=(0.0, 1.0)) == 0.0
    with pytest.raises(ValueError, match="quantiles"):
        extreme_fraction(generated, reference, quantiles=(0.9, 0.1))


def test_rollout_scorer_stops_a_bare_regressor_leaving_the_climate():
    # A regressor that doubles the state: after a few steps it is 10 std away;
    # it must not be fed further (a featurizer would refuse such input).
    class Doubles:
        calls = []

        def predict(self, X):
            self.calls.append(np.abs(X).max())
            return 2.0 * X

    X, y, _ = pairs_from_trajectories([rotation_trajectory(200, 0.2)])
    regressor = Doubles()
    score = make_rollout_scorer(30)(regressor, X, X + y)
    assert np.isfinite(score) and score < -1.0
    assert max(regressor.calls) <= 10 * np.sqrt(0.5) + 1  # 10 std of the circle
