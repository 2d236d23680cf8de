import numpy as np
import pytest
from numpy.testing import assert_allclose
from sklearn.linear_model import Ridge
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.neighbors import NearestNeighbors

from skdiffusion.datasets import (
    make_lorenz63,
    normalize_states,
)
from skdiffusion.metrics import (
    extreme_fraction,
    hellinger_distance,
    make_nrmse_scorer,
    nearest_neighbour_distances,
    neg_nrmse_scorer,
    nrmse,
)


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
