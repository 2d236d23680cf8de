import joblib
import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy.linalg import LinAlgWarning
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from skdiffusion import RFFFeaturizer
from skdiffusion.linear_model import StreamingRidge


def regression(n_samples=500, n_features=6, n_targets=None, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_samples, n_features)) * rng.uniform(0.1, 10, n_features)
    X += rng.normal(size=n_features) * 5
    shape = (n_features,) if n_targets is None else (n_features, n_targets)
    coef = rng.normal(size=shape)
    return X, X @ coef + 3.0 + rng.normal(size=(n_samples,) + coef.shape[1:])


class RowCountingRFF(RFFFeaturizer):
    """Records the number of rows of every transform call."""

    def transform(self, X):
        type(self).rows.append(len(X))
        return super().transform(X)

    rows = []


@parametrize_with_checks(
    [StreamingRidge(), StreamingRidge(chunk_size=7, standardize=True)]
)
def test_sklearn_compatible(estimator, check):
    check(estimator)


@pytest.mark.parametrize("n_targets", [None, 3])
@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("chunk_size", [1, 64, 10_000])
def test_same_coefficients_as_ridge(n_targets, fit_intercept, chunk_size):
    X, y = regression(n_targets=n_targets)
    params = {"alpha": 2.0, "fit_intercept": fit_intercept}
    streaming = StreamingRidge(chunk_size=chunk_size, **params).fit(X, y)
    ridge = Ridge(**params).fit(X, y)
    assert streaming.coef_.shape == ridge.coef_.shape
    assert_allclose(streaming.coef_, ridge.coef_, rtol=1e-9, atol=1e-12)
    assert_allclose(streaming.intercept_, ridge.intercept_, rtol=1e-9, atol=1e-12)
    assert_allclose(streaming.predict(X), ridge.predict(X), rtol=1e-9)


def test_accurate_for_features_with_large_means():
    # Accumulating raw sums would lose the 1e-3 spread next to the 1e6 mean.
    X, y = regression()
    X = 1e6 + 1e-3 * X
    streaming = StreamingRidge(alpha=1e-6, chunk_size=50).fit(X, y)
    ridge = Ridge(alpha=1e-6).fit(X, y)
    assert_allclose(streaming.predict(X), ridge.predict(X), rtol=0, atol=1e-4)


def test_standardize_is_ridge_on_standardised_features():
    X, y = regression(n_targets=2)
    X[:, 0] = 4.0  # constant: kept at scale 1, as StandardScaler does
    streaming = StreamingRidge(alpha=1e-4, standardize=True, chunk_size=33).fit(X, y)
    pipeline = make_pipeline(StandardScaler(), Ridge(alpha=1e-4)).fit(X, y)
    scaler, ridge = pipeline[0], pipeline[-1]
    assert_allclose(streaming.coef_, ridge.coef_ / scaler.scale_, rtol=1e-8)
    assert_allclose(streaming.predict(X), pipeline.predict(X), rtol=1e-8)


def test_transformer_features_equal_ridge_on_the_full_feature_matrix():
    X, y = regression(n_features=3, n_targets=3)
    X /= np.abs(X).max(axis=0)
    rff = RFFFeaturizer(128, random_state=0)
    streaming = StreamingRidge(1e-3, transformer=rff, chunk_size=100).fit(X, y)
    ridge = Ridge(1e-3).fit(rff.fit_transform(X), y)
    assert_allclose(streaming.coef_, ridge.coef_, rtol=1e-7, atol=1e-9)
    assert_allclose(streaming.predict(X), ridge.predict(rff.transform(X)), rtol=1e-7)
    assert streaming.transformer_ is not rff


def test_transformer_never_sees_more_than_a_chunk():
    X, y = regression(n_features=3)
    RowCountingRFF.rows = []
    model = StreamingRidge(transformer=RowCountingRFF(64), chunk_size=40).fit(X, y)
    model.predict(X)
    assert max(RowCountingRFF.rows) == 40
    assert sum(RowCountingRFF.rows) == 2 * len(X)


def test_frozen_transformer_is_used_as_it_is():
    X, y = regression(n_features=3)
    fitted = RFFFeaturizer(32).fit(X)  # random_state=None: a refit would differ
    model = StreamingRidge(transformer=FrozenEstimator(fitted)).fit(X, y)
    assert model.transformer_.estimator is fitted
    assert_array_equal(model.transformer_.transform(X), fitted.transform(X))


def test_partial_fit_over_batches_equals_fit():
    X, y = regression(n_targets=2)
    streaming = StreamingRidge(alpha=0.5, standardize=True)
    for batch in np.array_split(np.arange(len(X)), 7):
        streaming.partial_fit(X[batch], y[batch])
    full = StreamingRidge(alpha=0.5, standardize=True).fit(X, y)
    assert streaming.n_samples_seen_ == len(X)
    assert_allclose(streaming.coef_, full.coef_, rtol=1e-9)
    assert_allclose(streaming.intercept_, full.intercept_, rtol=1e-9)


def test_failing_partial_fit_leaves_the_estimator_unchanged():
    X, y = regression()
    model = StreamingRidge().partial_fit(X[:100], y[:100])
    coef = model.coef_.copy()
    with pytest.raises(ValueError, match="features"):
        model.partial_fit(X[100:, :3], y[100:])
    with pytest.raises(ValueError, match="target"):
        model.partial_fit(X[100:], np.c_[y[100:], y[100:]])
    assert model.n_samples_seen_ == 100
    model.partial_fit(X[100:], y[100:])
    assert_allclose(model.coef_, StreamingRidge().fit(X, y).coef_, rtol=1e-9)
    assert not np.allclose(model.coef_, coef)


def test_singular_system_falls_back_to_least_squares():
    X, y = regression()
    X = np.c_[X, X[:, 0]]  # a repeated column
    with pytest.warns(LinAlgWarning, match="least-squares"):
        model = StreamingRidge(alpha=0.0).fit(X, y)
    assert_allclose(model.predict(X), Ridge(alpha=1e-10).fit(X, y).predict(X))


def test_verbose_reports_chunks(capsys):
    X, y = regression()
    StreamingRidge(chunk_size=100).fit(X, y)
    assert capsys.readouterr().out == ""
    StreamingRidge(chunk_size=100, verbose=True).fit(X, y)
    assert "chunk 5/5" in capsys.readouterr().out


def test_joblib_round_trip(tmp_path):
    X, y = regression(n_features=3)
    model = StreamingRidge(transformer=RFFFeaturizer(16, random_state=0)).fit(X, y)
    joblib.dump(model, tmp_path / "model.joblib")
    loaded = joblib.load(tmp_path / "model.joblib")
    assert_array_equal(loaded.predict(X), model.predict(X))


@pytest.mark.parametrize(
    "params, match",
    [
        ({"alpha": -1.0}, "alpha"),
        ({"chunk_size": 0}, "chunk_size"),
        ({"transformer": "rff"}, "transformer"),
    ],
)
def test_bad_parameters(params, match):
    with pytest.raises(ValueError, match=match):
        StreamingRidge(**params).fit(*regression())


def test_bad_data():
    X, y = regression()
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        StreamingRidge().fit(X, y[:-1])
    y[3] = np.nan
    with pytest.raises(ValueError, match="y"):
        StreamingRidge().fit(X, y)
