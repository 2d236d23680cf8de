"""Featurizers, heads and the surrogate composed with sklearn's own tools."""

import numpy as np
import pytest
import torch
from joblib import parallel_config
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import Ridge
from sklearn.model_selection import GridSearchCV, GroupKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import PolynomialFeatures

from skdiffusion import DiffusionFeaturizer, RFFFeaturizer
from skdiffusion.datasets import make_lorenz63
from skdiffusion.linear_model import StreamingRidge
from skdiffusion.metrics import neg_nrmse_scorer, nrmse
from skdiffusion.surrogate import SurrogateForecaster

# Small but trained: measured one-step nRMSE 0.004 with the head below, in
# about 10 s on 2 loaded cores (the untrained network: 0.5).
TRAINED = dict(n_hidden=128, max_iter=300, batch_size=256, learning_rate=3e-3)
TINY = dict(feature_times=(0, 400), n_hidden=8, n_blocks=1, time_embedding_dim=8,
            max_iter=4, batch_size=16)


def featurizer(**params):
    return DiffusionFeaturizer(**params, device="cpu", random_state=0)


def surrogate(features, head=None, **pipeline_params):
    head = StreamingRidge(1e-6, standardize=True) if head is None else head
    steps = [("features", features), ("head", head)]
    return SurrogateForecaster(Pipeline(steps, **pipeline_params))


def transfer_head():
    """The paper's transfer head: ridge, lambda 1e-4 on standardised features."""
    return StreamingRidge(alpha=1e-4, standardize=True)


def one_step_nrmse(model, data):
    """nRMSE of the 0.1 MTU prediction, in normalised units."""
    return nrmse(data.X + data.y, model.predict(data.X), std=1.0)


class CountingRFF(RFFFeaturizer):
    """Counts its fits (class-level: fits happen on clones)."""

    def fit(self, X, y=None):
        type(self).n_fits += 1
        return super().fit(X, y)

    n_fits = 0


class ThreadRecordingRidge(Ridge):
    """Records how many threads torch would use where it is fitted."""

    def fit(self, X, y):
        self.torch_threads_ = torch.get_num_threads()
        return super().fit(X, y)


def torch_threads(estimator, X, y):
    """A 'scorer' that reports the head's torch threads from its worker."""
    return estimator.regressor_.named_steps["head"].torch_threads_


@pytest.fixture(scope="module")
def lorenz():
    """Normalised Lorenz 63 pairs: training, a larger set for heads, test."""
    train = make_lorenz63(8, 1000, random_state=0)
    heads = make_lorenz63(32, 1000, random_state=2)
    test = make_lorenz63(2, 1000, random_state=1)
    return train, heads, test


@pytest.fixture(scope="module")
def trained_featurizer(lorenz):
    train, _, _ = lorenz
    return featurizer(**TRAINED).fit(train.X)


def small_search(lorenz, **params):
    train = lorenz[0]
    grid = {
        "regressor__features": [
            RFFFeaturizer(512, random_state=0),
            PolynomialFeatures(4),
            "passthrough",
        ],
        "regressor__head": [Ridge(1e-6), Ridge(10.0)],
    }
    search = GridSearchCV(
        surrogate("passthrough"), grid, cv=GroupKFold(4), scoring=neg_nrmse_scorer,
        **params,
    )
    return search.fit(train.X[::4], (train.X + train.y)[::4], groups=train.groups[::4])


@pytest.mark.parametrize(
    "features",
    [RFFFeaturizer(1536, random_state=0), PolynomialFeatures(4), "passthrough",
     featurizer(**TINY)],
    ids=["rff", "polynomial", "passthrough", "diffusion"],
)
def test_pipeline_in_the_surrogate_fits_and_forecasts(lorenz, features):
    train, _, test = lorenz
    model = surrogate(features).fit(train.X, train.X + train.y)
    trajectories = model.forecast(test.X[:5], n_steps=20)
    assert trajectories.shape == (5, 21, 3)
    assert_array_equal(trajectories[:, 0], test.X[:5])
    assert np.all(np.isfinite(trajectories[:, 1]))
    # The climatological level is about 1.4; RFF(1536) + ridge is the
    # paper's strong baseline (measured 0.0015 here).
    assert one_step_nrmse(model, test) < (0.005 if "rff" in str(features) else 0.6)


def test_transfer_ridge_beats_one_percent_and_the_untrained_network_does_not(
    lorenz, trained_featurizer
):
    train, heads, test = lorenz
    untrained = featurizer(**{**TRAINED, "max_iter": 0}).fit(train.X)
    scores = {}
    for name, features in [("trained", trained_featurizer), ("untrained", untrained)]:
        model = surrogate(FrozenEstimator(features), transfer_head())
        scores[name] = one_step_nrmse(model.fit(heads.X, heads.X + heads.y), test)
    assert scores["trained"] < 0.01
    assert scores["untrained"] > 0.1


def test_frozen_featurizer_fits_only_the_head(lorenz, trained_featurizer, monkeypatch):
    train, _, test = lorenz
    weights = {k: v.copy() for k, v in trained_featurizer.network_state_.items()}
    n_iter = trained_featurizer.n_iter_

    def no_training(self, X, y=None):
        raise AssertionError("the frozen featurizer was fitted")

    monkeypatch.setattr(DiffusionFeaturizer, "fit", no_training)
    model = surrogate(FrozenEstimator(trained_featurizer), transfer_head())
    search = GridSearchCV(
        model, {"regressor__head__alpha": [1e-4, 1.0]}, cv=GroupKFold(2),
        scoring=neg_nrmse_scorer,
    )
    search.fit(train.X[::4], (train.X + train.y)[::4], groups=train.groups[::4])
    assert trained_featurizer.n_iter_ == n_iter
    for name, value in trained_featurizer.network_state_.items():
        assert_array_equal(value, weights[name])
    assert search.best_params_ == {"regressor__head__alpha": 1e-4}


def test_grid_search_over_features_and_heads_with_group_folds(lorenz):
    train = lorenz[0]
    for fit_rows, test_rows in GroupKFold(4).split(train.X, groups=train.groups):
        assert not set(train.groups[fit_rows]) & set(train.groups[test_rows])
    search = small_search(lorenz)
    assert len(search.cv_results_["params"]) == 6
    assert np.all(search.cv_results_["mean_test_score"] <= 0)  # minus nRMSE
    best = search.best_params_
    assert not isinstance(best["regressor__features"], str)  # not the raw state
    assert best["regressor__head"].alpha == 1e-6
    assert isinstance(search.best_estimator_, SurrogateForecaster)


@pytest.mark.parametrize("memory", [True, False])
def test_pipeline_memory_fits_the_featurizer_once_per_fold(lorenz, tmp_path, memory):
    train = lorenz[0]
    model = surrogate(
        CountingRFF(64, random_state=0), memory=str(tmp_path) if memory else None
    )
    search = GridSearchCV(
        model, {"regressor__head__alpha": [1e-6, 1e-3, 1.0]}, cv=GroupKFold(3),
        scoring=neg_nrmse_scorer,
    )
    CountingRFF.n_fits = 0
    search.fit(train.X[::4], (train.X + train.y)[::4], groups=train.groups[::4])
    # 3 folds + the refit; without memory also once per head in every fold
    assert CountingRFF.n_fits == (3 + 1 if memory else 3 * 3 + 1)


def test_n_jobs_2_gives_the_same_search_without_oversubscribing(lorenz):
    train = lorenz[0]
    model = surrogate(RFFFeaturizer(64, random_state=0), ThreadRecordingRidge())
    grid = {"regressor__head__alpha": [1e-6, 1.0]}
    scoring = {"nrmse": neg_nrmse_scorer, "threads": torch_threads}
    results = {}
    for n_jobs in (1, 2):
        search = GridSearchCV(model, grid, cv=GroupKFold(2), scoring=scoring,
                              refit="nrmse", n_jobs=n_jobs)
        search.fit(train.X[::4], (train.X + train.y)[::4], groups=train.groups[::4])
        results[n_jobs] = search.cv_results_
    assert_allclose(results[2]["mean_test_nrmse"], results[1]["mean_test_nrmse"])
    # In loky's workers torch (and so RFFFeaturizer's thread pool) gets
    # cores // n_jobs threads: loky sets MKL_NUM_THREADS, which torch follows.
    # parallel_config(inner_max_num_threads=...) makes the limit explicit.
    assert np.all(results[2]["mean_test_threads"] * 2 <= 2)


def test_search_runs_on_a_dask_cluster(lorenz):
    distributed = pytest.importorskip("dask.distributed")
    expected = small_search(lorenz).cv_results_["mean_test_score"]
    with (
        distributed.LocalCluster(
            n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster),
        parallel_config(backend="dask"),
    ):
        search = small_search(lorenz, n_jobs=-1)
    assert_allclose(search.cv_results_["mean_test_score"], expected)
