import joblib
import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy.linalg import LinAlgWarning
from sklearn.base import clone
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from skdiffusion import RFFFeaturizer
from skdiffusion.linear_model import StreamingRidge, StreamingRidgeCV


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


def fails_on_huge_rows(X):
    """A feature map that raises on rows beyond 1e6, e.g. in a late chunk."""
    if np.any(np.abs(X) > 1e6):
        raise ValueError("huge row")
    return X


def failed_refits(frame, y):
    """(X, y) of refits that fail, each after some part of fit has run."""
    nan_y = y.copy()
    nan_y[-1] = np.nan
    huge = frame.copy()
    huge.iloc[-1, -1] = 1e9  # passes validation, fails in the last chunk
    renamed = frame.set_axis([f"other{i}" for i in range(frame.shape[1])], axis=1)
    return {
        "other width, NaN in y": (frame.iloc[:, :-1], nan_y),
        "other column names, NaN in y": (renamed, nan_y),
        "other width, fails in the last chunk": (huge.iloc[:, 1:], y),
        "fails in the last chunk": (huge, y),
    }


RIDGES = {
    "StreamingRidge": StreamingRidge(
        transformer=FunctionTransformer(fails_on_huge_rows), chunk_size=64
    ),
    "StreamingRidgeCV": StreamingRidgeCV(
        transformer=FunctionTransformer(fails_on_huge_rows), chunk_size=64,
        random_state=0,
    ),
}


@pytest.mark.parametrize("name", RIDGES)
@pytest.mark.parametrize("method", ["fit", "partial_fit"])
def test_a_failed_refit_leaves_every_fitted_attribute_as_it_was(name, method):
    pd = pytest.importorskip("pandas")
    if method == "partial_fit" and name == "StreamingRidgeCV":
        pytest.skip("StreamingRidgeCV has no partial_fit")
    X, y = regression()
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(X.shape[1])])
    model = getattr(clone(RIDGES[name]), method)(frame, y)
    prediction, names = model.predict(frame), model.feature_names_in_.copy()
    for case, (X_bad, y_bad) in failed_refits(frame, y).items():
        with pytest.raises(ValueError, match="NaN|huge row|feature"):
            getattr(model, method)(X_bad, y_bad)
        assert_array_equal(model.predict(frame), prediction, err_msg=case)
        assert model.n_features_in_ == X.shape[1], case
        assert_array_equal(model.feature_names_in_, names, err_msg=case)
        assert model.n_samples_seen_ == len(X), case


def test_partial_fit_after_a_batch_failed_half_way_counts_only_good_batches():
    X, y = regression()
    model = StreamingRidge(
        transformer=FunctionTransformer(fails_on_huge_rows), chunk_size=50
    ).partial_fit(X[:200], y[:200])
    bad = X[200:].copy()
    bad[-1, 0] = 1e9  # the earlier chunks of this batch were accumulated
    with pytest.raises(ValueError, match="huge row"):
        model.partial_fit(bad, y[200:])
    model.partial_fit(X[200:], y[200:])
    assert_allclose(model.coef_, StreamingRidge().fit(X, y).coef_, rtol=1e-9)


def test_singular_system_falls_back_to_least_squares():
    X, y = regression()
    X = np.c_[X, X[:, 0]]  # a repeated column
    with pytest.warns(LinAlgWarning, match="least-squares"):
        model = StreamingRidge(alpha=0.0).fit(X, y)
    assert_allclose(model.predict(X), Ridge(alpha=1e-10).fit(X, y).predict(X))


def test_verbose_reports_chunks(capsys):
    X, y = regression()
    StreamingRidge(chunk_size=100).fit(X, y)
    assert capsys.readouterr() == ("", "")
    model = StreamingRidge(chunk_size=100, verbose=True).fit(X, y)
    out, err = capsys.readouterr()
    assert out == "" and "StreamingRidge.fit: 5/5 chunk" in err
    model.predict(X)  # prediction is quiet
    assert capsys.readouterr() == ("", "")


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
