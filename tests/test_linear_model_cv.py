import warnings

import joblib
import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.linear_model import Ridge
from sklearn.metrics import make_scorer, mean_absolute_error
from sklearn.model_selection import (
    GroupKFold,
    GroupShuffleSplit,
    KFold,
    ShuffleSplit,
    TimeSeriesSplit,
)
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from skdiffusion import RFFFeaturizer
from skdiffusion.datasets import pairs_from_trajectories
from skdiffusion.linear_model import StreamingRidge, StreamingRidgeCV
from skdiffusion.metrics import make_rollout_scorer

ALPHAS = (1e-6, 1e-2, 1.0, 1e2, 1e4, 1e6)


def regression(n_samples=400, n_features=6, n_targets=None, noise=1.0, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_samples, n_features)) * rng.uniform(0.1, 10, n_features)
    X += rng.normal(size=n_features) * 5
    shape = (n_features,) if n_targets is None else (n_features, n_targets)
    coef = rng.normal(size=shape)
    y = X @ coef + 3.0 + noise * rng.normal(size=(n_samples,) + coef.shape[1:])
    return X, y


@parametrize_with_checks(
    [
        StreamingRidgeCV(),
        StreamingRidgeCV(chunk_size=7, standardize=True, validation_fraction=0.3),
    ]
)
def test_sklearn_compatible(estimator, check):
    check(estimator)


@pytest.mark.parametrize("n_targets", [None, 2])
@pytest.mark.parametrize("standardize", [False, True])
def test_validation_errors_are_those_of_ridge_on_the_other_rows(n_targets, standardize):
    X, y = regression(n_features=20, n_targets=n_targets, noise=30.0)
    model = StreamingRidgeCV(
        ALPHAS, standardize=standardize, chunk_size=64, random_state=0
    ).fit(X, y)
    held_out = np.zeros(len(X), dtype=bool)
    held_out[StreamingRidgeCV(random_state=0)._held_out(len(X))] = True
    assert held_out.sum() == 40
    expected = []
    for alpha in ALPHAS:
        ridge = make_pipeline(StandardScaler(with_std=standardize), Ridge(alpha))
        ridge.fit(X[~held_out], y[~held_out])
        expected.append(np.mean((ridge.predict(X[held_out]) - y[held_out]) ** 2))
    assert_allclose(model.mse_path_, expected, rtol=1e-8)
    assert model.alpha_ == ALPHAS[np.argmin(expected)]
    # the noise makes a middle penalty best, so the choice is not an edge case
    assert ALPHAS[0] < model.alpha_ < ALPHAS[-1]


def test_refits_the_chosen_penalty_on_all_rows():
    X, y = regression(n_targets=3, noise=30.0)
    model = StreamingRidgeCV(ALPHAS, standardize=True, random_state=0).fit(X, y)
    ridge = StreamingRidge(model.alpha_, standardize=True).fit(X, y)
    assert model.n_samples_seen_ == len(X)
    assert_allclose(model.coef_, ridge.coef_, rtol=1e-8)
    assert_allclose(model.intercept_, ridge.intercept_, rtol=1e-8)
    assert_allclose(model.predict(X), ridge.predict(X), rtol=1e-8)


def test_exact_data_gets_the_smallest_penalty_and_noise_the_largest():
    X, y = regression(noise=0.0)
    assert StreamingRidgeCV((1e-6, 1e6), random_state=0).fit(X, y).alpha_ == 1e-6
    y = np.random.default_rng(1).normal(size=len(X))  # unrelated to X
    assert StreamingRidgeCV((1e-6, 1e6), random_state=0).fit(X, y).alpha_ == 1e6


def test_a_tie_goes_to_the_larger_penalty():
    X, y = regression()
    X[:] = 2.0  # constant features: every penalty predicts the mean
    model = StreamingRidgeCV((1e-3, 10.0, 1.0), random_state=0).fit(X, y)
    assert np.ptp(model.mse_path_) == 0
    assert model.alpha_ == 10.0


def test_chunk_size_does_not_change_the_fit():
    X, y = regression(n_targets=2, noise=30.0)
    fits = [
        StreamingRidgeCV(ALPHAS, chunk_size=size, random_state=3).fit(X, y)
        for size in (1, 50, 10_000)
    ]
    for fit in fits[1:]:
        assert_allclose(fit.mse_path_, fits[0].mse_path_, rtol=1e-8)
        assert_allclose(fit.coef_, fits[0].coef_, rtol=1e-8)


def test_random_state_draws_the_held_out_rows():
    X, y = regression(noise=30.0)
    first, again, other = (
        StreamingRidgeCV(ALPHAS, random_state=seed).fit(X, y) for seed in (0, 0, 1)
    )
    assert_array_equal(first.mse_path_, again.mse_path_)
    assert not np.allclose(first.mse_path_, other.mse_path_)


def test_transformer_features_equal_the_full_feature_matrix():
    X, y = regression(n_features=3, n_targets=2)
    X /= np.abs(X).max(axis=0)
    rff = RFFFeaturizer(64, random_state=0)
    streaming = StreamingRidgeCV(
        ALPHAS, transformer=rff, chunk_size=50, random_state=0
    ).fit(X, y)
    in_memory = StreamingRidgeCV(ALPHAS, random_state=0).fit(rff.fit_transform(X), y)
    assert_allclose(streaming.mse_path_, in_memory.mse_path_, rtol=1e-6)
    assert streaming.alpha_ == in_memory.alpha_
    expected = in_memory.predict(rff.transform(X))
    assert_allclose(streaming.predict(X), expected, rtol=1e-6)


def test_zero_penalty_with_collinear_features_is_least_squares():
    X, y = regression()
    X = np.c_[X, X[:, 0]]  # a repeated column: singular normal equations
    model = StreamingRidgeCV((0.0,), random_state=0).fit(X, y)
    assert np.all(np.isfinite(model.mse_path_))
    assert_allclose(model.predict(X), Ridge(alpha=1e-10).fit(X, y).predict(X))


def test_verbose_reports_each_penalty(capsys):
    X, y = regression()
    StreamingRidgeCV((1e-3, 1.0), random_state=0).fit(X, y)
    assert capsys.readouterr() == ("", "")
    StreamingRidgeCV((1e-3, 1.0), chunk_size=100, verbose=True).fit(X, y)
    out, err = capsys.readouterr()
    assert out == "" and "StreamingRidgeCV.fit: 4/4 chunk" in err
    assert "alpha 1.0e-03 validation MSE" in err
    assert "alpha 1.0e+00 validation MSE" in err


def test_joblib_round_trip(tmp_path):
    X, y = regression(n_features=3)
    model = StreamingRidgeCV(
        transformer=RFFFeaturizer(16, random_state=0), random_state=0
    ).fit(X, y)
    joblib.dump(model, tmp_path / "model.joblib")
    loaded = joblib.load(tmp_path / "model.joblib")
    assert_array_equal(loaded.predict(X), model.predict(X))
    assert loaded.alpha_ == model.alpha_


@pytest.mark.parametrize(
    "params, match",
    [
        ({"alphas": []}, "alphas"),
        ({"alphas": [1.0, -1.0]}, "alphas"),
        ({"alphas": [np.nan]}, "alphas"),
        ({"alphas": 1.0}, "alphas"),
        ({"validation_fraction": 0.0}, "validation_fraction"),
        ({"validation_fraction": 1.0}, "validation_fraction"),
        ({"chunk_size": 0}, "chunk_size"),
        ({"transformer": "rff"}, "transformer"),
    ],
)
def test_bad_parameters(params, match):
    with pytest.raises(ValueError, match=match):
        StreamingRidgeCV(**params).fit(*regression())


def test_too_few_samples_to_hold_out():
    X, y = regression(n_samples=1)
    with pytest.raises(ValueError, match="validation_fraction=0.1 of 1 samples"):
        StreamingRidgeCV().fit(X, y)


def test_failed_refit_leaves_the_fit_unchanged():
    X, y = regression(noise=30.0)
    model = StreamingRidgeCV(ALPHAS, random_state=0).fit(X, y)
    alpha, prediction = model.alpha_, model.predict(X)
    with pytest.raises(ValueError, match="alphas"):
        model.set_params(alphas=[-1.0]).fit(X, y)
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        model.set_params(alphas=ALPHAS).fit(X, y[:-1])
    assert model.alpha_ == alpha
    assert_array_equal(model.predict(X), prediction)


# --- folds, groups, scorers and the grid's edge ------------------------------


def ridge_mse_on(X, y, train, test, alphas, standardize=False):
    errors = []
    for alpha in alphas:
        ridge = make_pipeline(StandardScaler(with_std=standardize), Ridge(alpha))
        ridge.fit(X[train], y[train])
        errors.append(np.sum((ridge.predict(X[test]) - y[test]) ** 2))
    return np.array(errors)


def test_kfold_scores_pool_the_squared_errors_of_every_fold():
    X, y = regression(n_features=20, noise=30.0)
    model = StreamingRidgeCV(ALPHAS, cv=KFold(4), chunk_size=64).fit(X, y)
    total = sum(ridge_mse_on(X, y, train, test, ALPHAS)
                for train, test in KFold(4).split(X))
    assert_allclose(model.mse_path_, total / len(X), rtol=1e-8)
    assert_allclose(model.score_path_, -model.mse_path_)
    assert model.alpha_ == ALPHAS[np.argmin(total)]


def test_groups_hold_out_whole_trajectories():
    X, y = regression(n_features=20, noise=30.0)
    groups = np.repeat(np.arange(10), 40)
    model = StreamingRidgeCV(ALPHAS, validation_fraction=0.3, random_state=0)
    model.fit(X, y, groups=groups)
    [(train, test)] = GroupShuffleSplit(1, test_size=0.3, random_state=0).split(
        X, y, groups
    )
    assert len(np.unique(groups[test])) == 3
    expected = ridge_mse_on(X, y, train, test, ALPHAS) / len(test)
    assert_allclose(model.mse_path_, expected, rtol=1e-8)
    by_group = StreamingRidgeCV(ALPHAS, cv=GroupKFold(5)).fit(X, y, groups=groups)
    total = sum(ridge_mse_on(X, y, train, test, ALPHAS)
                for train, test in GroupKFold(5).split(X, y, groups))
    assert_allclose(by_group.mse_path_, total / len(X), rtol=1e-8)


@pytest.mark.parametrize(
    "cv, match",
    [(TimeSeriesSplit(3), "every other row"), (ShuffleSplit(3, random_state=0),
     "two splits")],
)
def test_splits_it_cannot_stream_are_refused(cv, match):
    X, y = regression()
    with pytest.raises(ValueError, match=match):
        StreamingRidgeCV(cv=cv).fit(X, y)


def test_warns_when_the_choice_is_an_end_of_the_grid():
    X, y = regression(n_features=20, noise=30.0)
    exact = X @ np.arange(20.0)  # no noise: the least penalty is best
    with pytest.warns(UserWarning, match="alpha=0.01, the smallest"):
        StreamingRidgeCV((1e-2, 1e2, 1e4), random_state=0).fit(X, exact)
    noise = np.random.default_rng(1).normal(size=len(X))  # unrelated to X
    with pytest.warns(UserWarning, match="alpha=1, the largest"):
        StreamingRidgeCV((1e-6, 1e-3, 1.0), random_state=0).fit(X, noise)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = StreamingRidgeCV(ALPHAS, random_state=0).fit(X, y)
    assert ALPHAS[0] < model.alpha_ < ALPHAS[-1]


def test_a_scorer_sees_a_ridge_fitted_on_the_other_rows_of_each_fold():
    X, y = regression(n_features=20, noise=30.0)
    scorer = make_scorer(mean_absolute_error, greater_is_better=False)
    model = StreamingRidgeCV(ALPHAS, cv=KFold(3), scoring=scorer).fit(X, y)
    expected = [
        np.mean([scorer(StreamingRidge(alpha).fit(X[train], y[train]), X[test],
                        y[test]) for train, test in KFold(3).split(X)])
        for alpha in ALPHAS
    ]
    assert_allclose(model.score_path_, expected, rtol=1e-8)
    assert not hasattr(model, "mse_path_")
    assert model.alpha_ == ALPHAS[np.argmax(expected)]


def test_rollout_scoring_chooses_the_penalty_whose_rollouts_stay_on_the_circle():
    # States on circles, y the increment: a large penalty shrinks the
    # rotation, which one-step errors barely see and rollouts do.
    angles = 0.2 * np.arange(200)
    circles = [r * np.c_[np.cos(angles + r), np.sin(angles + r)] for r in (1, 2, 3)]
    X, y, groups = pairs_from_trajectories(circles)
    model = StreamingRidgeCV(
        (1e-8, 30.0), cv=GroupKFold(3),
        scoring=make_rollout_scorer(30, target="increment"),
    ).fit(X, y, groups=groups)
    assert model.alpha_ == 1e-8
    assert model.score_path_[0] > -1e-6 > model.score_path_[1]


def test_the_penalty_path_decomposes_on_one_blas_thread(monkeypatch):
    # LAPACK's eigensolver on busy cores: 7x slower on two threads than on one
    from scipy import linalg
    from threadpoolctl import threadpool_info

    from skdiffusion import linear_model

    threads, real_eigh = [], linalg.eigh

    def eigh(system):
        blas = [pool for pool in threadpool_info() if pool["user_api"] == "blas"]
        threads.append({pool["num_threads"] for pool in blas})
        return real_eigh(system)

    monkeypatch.setattr(linear_model.linalg, "eigh", eigh)
    X, y = regression(n_features=20, noise=30.0)
    StreamingRidgeCV(ALPHAS, random_state=0).fit(X, y)
    assert threads and all(found == {1} for found in threads)
