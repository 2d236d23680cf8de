"""ConvRegressor and FineTunedRegressor: networks of fields on a ring."""

import joblib
import numpy as np
import pytest
from sklearn.frozen import FrozenEstimator
from sklearn.utils.estimator_checks import parametrize_with_checks

from skdiffusion import ConvRegressor, DiffusionFeaturizer, FineTunedRegressor
from skdiffusion.datasets import make_lorenz63, make_lorenz96

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture(autouse=True, scope="module")
def _one_thread(one_torch_thread):
    """torch on one thread for this module (the fixture is in conftest)."""


@pytest.fixture(scope="module")
def ring():
    """Lorenz 96 increments on 12 sites."""
    data = make_lorenz96(6, 200, n_dim=12, burn_in=300, random_state=0)
    return data.X, data.y


def tiny_conv(**params):
    defaults = {"n_hidden": 8, "n_blocks": 1, "kernel_size": 3, "batch_size": 32,
                "max_iter": 200, "learning_rate": 1e-2, "random_state": 0}
    return ConvRegressor(**{**defaults, **params})


def tiny_featurizer(architecture="conv", **params):
    settings = {
        "architecture": architecture, "kernel_size": 3, "n_hidden": 8,
        "n_blocks": 1, "time_embedding_dim": 8, "max_iter": 10,
        "batch_size": 32, "random_state": 0, **params,
    }
    return DiffusionFeaturizer(**settings)


def _expected_failures(estimator):
    failures = {
        "check_methods_subset_invariance": "float32 network: last-bit changes "
        "with the number of rows predicted at once",
    }
    if isinstance(estimator, ConvRegressor):
        # a field of another ring size is valid input, not an error
        failures["check_n_features_in_after_fitting"] = "rings of any size"
    return failures


@parametrize_with_checks(
    [
        # a ring network is not scored on sklearn's tabular data (poor_score):
        # a few steps show the API
        tiny_conv(max_iter=10),
        FineTunedRegressor(
            FrozenEstimator(tiny_featurizer("dense", n_hidden=32)),
            max_iter=100,
            learning_rate=1e-2,
            random_state=0,
        ),
    ],
    expected_failed_checks=_expected_failures,
)
def test_sklearn_compatible(estimator, check):
    check(estimator)


def test_conv_regressor_learns_the_lorenz96_increment(ring):
    X, y = ring
    reg = tiny_conv(n_hidden=16, max_iter=400).fit(X[:1000], y[:1000])
    assert reg.score(X[1000:], y[1000:]) > 0.9
    assert reg.x_mean_.shape == reg.y_mean_.shape == (1,)  # one for all sites


def test_conv_regressor_is_translation_equivariant_on_any_ring(ring):
    X, y = ring
    reg = tiny_conv().fit(X, y)
    pred = reg.predict(X[:4])
    np.testing.assert_allclose(reg.predict(np.roll(X[:4], 5, axis=1)),
                               np.roll(pred, 5, axis=1), atol=1e-5)
    wide = reg.predict(np.tile(X[:4], 2))  # the same field on 24 sites
    assert wide.shape == (4, 24)
    np.testing.assert_allclose(wide[:, :12], pred, atol=1e-5)


def test_conv_regressor_pools_sites_for_other_targets(ring):
    X, _ = ring
    reg = tiny_conv().fit(X, X.mean(axis=1))
    assert reg.predict(X[:3]).shape == (3,)
    assert reg.predict(np.tile(X[:3], 3)).shape == (3,)


def test_fine_tuning_starts_from_the_featurizer_and_leaves_it(ring):
    X, y = ring
    featurizer = tiny_featurizer().fit(X)
    weights = {k: v.copy() for k, v in featurizer.network_state_.items()}
    untouched = FineTunedRegressor(featurizer, max_iter=0).fit(X, y)
    trunk = untouched.module_.denoiser.state_dict()
    for name, value in weights.items():
        if not name.startswith("out_proj"):
            np.testing.assert_array_equal(trunk[name].numpy(), value)
    tuned = FineTunedRegressor(featurizer, max_iter=200, learning_rate=1e-2,
                               random_state=0).fit(X, y)
    assert tuned.score(X, y) > untouched.score(X, y)
    for name, value in weights.items():
        np.testing.assert_array_equal(featurizer.network_state_[name], value)
    np.testing.assert_array_equal(tuned.x_mean_, featurizer.mean_)
    assert tuned.predict(np.tile(X[:2], 2)).shape == (2, 24)


def test_fine_tuning_an_unfitted_featurizer_pretrains_a_clone(ring):
    X, y = ring
    featurizer = tiny_featurizer()
    reg = FineTunedRegressor(featurizer, max_iter=5).fit(X, y)
    assert reg.featurizer_ is not featurizer and reg.featurizer_.n_iter_ == 10
    assert not hasattr(featurizer, "network_state_")


def test_dense_fine_tuning_on_lorenz63():
    data = make_lorenz63(4, 400, random_state=0)
    featurizer = tiny_featurizer("dense", n_hidden=32).fit(data.X)
    reg = FineTunedRegressor(featurizer, time=50, max_iter=300,
                             learning_rate=3e-3, random_state=0)
    assert reg.fit(data.X, data.y).score(data.X, data.y) > 0.95


@pytest.mark.parametrize("make", [tiny_conv, lambda: FineTunedRegressor(
    tiny_featurizer(), max_iter=5, random_state=0)])
def test_joblib_round_trip(make, ring, tmp_path):
    X, y = ring
    reg = make().fit(X, y)
    joblib.dump(reg, tmp_path / "reg.joblib")
    np.testing.assert_array_equal(
        joblib.load(tmp_path / "reg.joblib").predict(X[:5]), reg.predict(X[:5])
    )
