"""ShallowHeadRegressor: the pipeline (frozen featurizer -> dense head) trained
from features computed batch by batch, never as a matrix."""

import pickle

import numpy as np
import pytest
from sklearn.frozen import FrozenEstimator
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import PolynomialFeatures
from sklearn.utils.estimator_checks import parametrize_with_checks

from skdiffusion import (
    DenseRegressor,
    DiffusionFeaturizer,
    RFFFeaturizer,
    ShallowHeadRegressor,
    neural,
)

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture(autouse=True, scope="module")
def _one_thread(one_torch_thread):
    """torch on one thread for this module (the fixture is in conftest)."""


def states(n=600, seed=0):
    X = np.random.default_rng(seed).normal(size=(n, 3))
    return X, np.sin(X) + 0.1 * X[:, ::-1]


def fitted_featurizer(**params):
    X, _ = states()
    settings = {
        "n_hidden": 16,
        "n_blocks": 1,
        "feature_times": (0, 50, 400),
        "max_iter": 20,
        "batch_size": 128,
        "random_state": 0,
        "device": "cpu",
    }
    return DiffusionFeaturizer(**{**settings, **params}).fit(X)


TRAINING = {
    "max_iter": 30,
    "batch_size": 64,
    "learning_rate": 1e-3,
    "random_state": 0,
    "device": "cpu",
    "n_iter_no_change": None,
}


def test_it_trains_the_pipeline_of_a_frozen_featurizer_and_a_dense_head():
    X, y = states()
    featurizer = fitted_featurizer()
    head = ShallowHeadRegressor(
        FrozenEstimator(featurizer),
        feature_times=(0, 400),
        hidden_layer_sizes=(8,),
        **TRAINING,
    ).fit(X, y)
    at = FrozenEstimator(
        DiffusionFeaturizer(**featurizer.get_params())
        .fit(X)
        .set_params(feature_times=(0, 400))
    )
    pipeline = make_pipeline(at, DenseRegressor((8,), **TRAINING)).fit(X, y)
    np.testing.assert_allclose(
        head.predict(X), pipeline.predict(X), rtol=1e-3, atol=1e-4
    )
    np.testing.assert_allclose(head.loss_curve_, pipeline[-1].loss_curve_, rtol=1e-4)


def test_it_never_computes_the_feature_matrix(monkeypatch):
    X, y = states()
    featurizer = fitted_featurizer()

    def refuse(self, X):
        raise AssertionError("transform called: the features were materialised")

    monkeypatch.setattr(DiffusionFeaturizer, "transform", refuse)
    head = ShallowHeadRegressor(featurizer, **TRAINING).fit(X, y)
    assert head.predict(X[:4]).shape == (4, 3)


def test_only_the_head_trains_and_the_featurizer_is_unchanged():
    X, y = states()
    featurizer = fitted_featurizer()
    before = {k: v.copy() for k, v in featurizer.network_state_.items()}
    head = ShallowHeadRegressor(featurizer, **TRAINING).fit(X, y)
    for name, value in head.module_.denoiser.state_dict().items():
        np.testing.assert_array_equal(value.numpy(), before[name])
    for name, value in featurizer.network_state_.items():
        np.testing.assert_array_equal(value, before[name])
    assert all(not p.requires_grad for p in head.module_.denoiser.parameters())


def test_a_conv_featurizer_is_refused_with_the_alternative():
    ring = np.random.default_rng(0).normal(size=(64, 8))
    featurizer = DiffusionFeaturizer(
        architecture="conv", n_hidden=4, n_blocks=1, max_iter=2, device="cpu"
    ).fit(ring)
    with pytest.raises(ValueError, match="FineTunedRegressor"):
        ShallowHeadRegressor(featurizer, **TRAINING).fit(ring, ring)


@pytest.mark.parametrize(
    "transformer", [RFFFeaturizer(32, random_state=0), PolynomialFeatures(3)],
    ids=["rff", "poly"],
)
def test_any_transformer_gives_the_pipeline_and_pickles(transformer):
    X, y = states()
    head = ShallowHeadRegressor(transformer, hidden_layer_sizes=(8,), **TRAINING)
    head.fit(X, y)
    frozen = FrozenEstimator(clone_fitted(transformer, X))
    pipeline = make_pipeline(frozen, DenseRegressor((8,), **TRAINING)).fit(X, y)
    # the same model; the head's transformer reads float32 states
    np.testing.assert_allclose(head.predict(X), pipeline.predict(X), atol=1e-5)
    np.testing.assert_allclose(head.loss_curve_, pipeline[-1].loss_curve_, rtol=1e-5)
    assert not hasattr(transformer, "n_features_in_")  # the unfitted one, unchanged
    loaded = pickle.loads(pickle.dumps(head))
    np.testing.assert_array_equal(loaded.predict(X), head.predict(X))


def clone_fitted(transformer, X):
    from sklearn.base import clone

    return clone(transformer).fit(X)


def test_a_transformer_is_called_on_batches_only(monkeypatch):
    X, y = states()
    rows = []
    transform = RFFFeaturizer.transform

    def counting(self, X):
        rows.append(len(X))
        return transform(self, X)

    monkeypatch.setattr(RFFFeaturizer, "transform", counting)
    monkeypatch.setattr(neural, "_FEATURE_STATS_ROWS", 100)
    featurizer = RFFFeaturizer(32, random_state=0).fit(X)
    ShallowHeadRegressor(featurizer, **TRAINING).fit(X, y).predict(X[:4])
    # one row for the width, 100 for the statistics, batches of 64 (a step
    # each, and one for the final loss), the 4 predicted
    assert rows == [1, 100, *[64] * (TRAINING["max_iter"] + 1), 4]


def test_feature_times_are_refused_for_other_transformers():
    X, y = states()
    head = ShallowHeadRegressor(
        RFFFeaturizer(32, random_state=0), feature_times=(0, 400), **TRAINING
    )
    with pytest.raises(ValueError, match="feature_times applies to a Diffusion"):
        head.fit(X, y)
    assert not hasattr(head, "module_")


@parametrize_with_checks(
    [
        ShallowHeadRegressor(
            # unfitted: fitted on each check's X first, whatever its columns
            DiffusionFeaturizer(
                n_hidden=8,
                n_blocks=1,
                feature_times=(0,),
                max_iter=10,
                batch_size=32,
                device="cpu",
                random_state=0,
            ),
            hidden_layer_sizes=(16,),
            max_iter=100,
            batch_size=32,
            random_state=0,
            device="cpu",
        ),
        ShallowHeadRegressor(
            RFFFeaturizer(64, random_state=0), hidden_layer_sizes=(16,),
            max_iter=100, batch_size=32, random_state=0, device="cpu",
        ),
    ],
    expected_failed_checks=lambda estimator: {
        "check_regressors_train": (
            "R^2 > 0.5 on sklearn's unscaled tabular data through random "
            "Fourier features of wavelength 1: not what the head is for"
        ),
        "check_methods_subset_invariance": (
            "float32 network on float32 features: last-bit changes with the "
            "batch composition"
        ),
    } if isinstance(estimator.featurizer, RFFFeaturizer) else {
        "check_regressors_train": (
            "R^2 > 0.5 on sklearn's tabular data from the frozen features of "
            "a featurizer trained 10 steps on it: not what the head is for"
        ),
    },
)
def test_sklearn_compatible(estimator, check):
    check(estimator)
