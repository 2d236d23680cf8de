"""Tests for skdiffusion.spatial: periodic patches and the site-wise head."""

import joblib
import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LinearRegression, Ridge
from sklearn.model_selection import GridSearchCV, GroupKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import PolynomialFeatures
from sklearn.utils.estimator_checks import parametrize_with_checks

from skdiffusion import (
    DiffusionFeaturizer,
    PeriodicPatches,
    RFFFeaturizer,
    SiteWiseRegressor,
    StreamingRidgeCV,
    SurrogateForecaster,
)
from skdiffusion.datasets import make_lorenz96
from skdiffusion.metrics import nrmse

# SiteWiseRegressor rejects a width that is not whole sites; for
# PeriodicPatches every width is a ring of that many sites, valid input
RINGS_OF_ANY_SIZE = dict.fromkeys(
    ["check_n_features_in_after_fitting", "check_transformer_general"],
    "rings of any size are valid",
)


@parametrize_with_checks([SiteWiseRegressor(Ridge())])
def test_site_wise_regressor_is_sklearn_compatible(estimator, check):
    check(estimator)


@parametrize_with_checks(
    [PeriodicPatches(radius=1)], expected_failed_checks=lambda _: RINGS_OF_ANY_SIZE
)
def test_periodic_patches_are_sklearn_compatible(estimator, check):
    check(estimator)


class Spy(RegressorMixin, BaseEstimator):
    """Records what fit was given; predicts the first feature of each row."""

    def fit(self, X, y, **fit_params):
        self.X_, self.y_, self.fit_params_ = X, y, fit_params
        return self

    def predict(self, X):
        return X[:, 0]


# --- SiteWiseRegressor ------------------------------------------------------


def test_one_head_is_fitted_on_all_sample_site_rows_in_site_major_order():
    X = np.arange(8.0).reshape(2, 4)  # 2 samples, 2 sites x 2 features
    y = np.array([[10.0, 11.0], [12.0, 13.0]])
    model = SiteWiseRegressor(Spy()).fit(X, y)
    assert_array_equal(model.estimator_.X_, [[0, 1], [2, 3], [4, 5], [6, 7]])
    assert_array_equal(model.estimator_.y_, [10, 11, 12, 13])
    assert (model.n_sites_, model.n_site_features_, model.n_features_in_) == (2, 2, 4)
    # predict: the first feature of each site, one column per site
    assert_array_equal(model.predict(X), [[0, 2], [4, 6]])


def test_the_shared_head_learns_the_rule_of_every_site_and_any_ring_size():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 10))  # 5 sites x 2 features
    y = 3.0 * X[:, 0::2] - X[:, 1::2] + 0.5
    model = SiteWiseRegressor(LinearRegression()).fit(X, y)
    assert_allclose(model.estimator_.coef_, [3.0, -1.0])
    assert_allclose(model.estimator_.intercept_, 0.5)
    ring_of_7 = rng.normal(size=(4, 14))
    expected = 3.0 * ring_of_7[:, 0::2] - ring_of_7[:, 1::2] + 0.5
    assert_allclose(model.predict(ring_of_7), expected)


def test_per_sample_fit_parameters_are_repeated_for_each_site():
    X, y = np.zeros((3, 6)), np.zeros((3, 3))
    weights, groups = np.array([1.0, 2.0, 3.0]), ["a", "b", "b"]
    model = SiteWiseRegressor(Spy()).fit(
        X, y, sample_weight=weights, groups=groups, flag=3
    )
    params = model.estimator_.fit_params_
    assert_array_equal(params["sample_weight"], [1, 1, 1, 2, 2, 2, 3, 3, 3])
    assert_array_equal(params["groups"], ["a"] * 3 + ["b"] * 6)
    assert params["flag"] == 3


def test_integer_sample_weights_equal_repeated_samples():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(6, 4)), rng.normal(size=(6, 2))
    weights = np.array([1, 2, 1, 3, 1, 1])
    weighted = SiteWiseRegressor(Ridge()).fit(X, y, sample_weight=weights)
    repeated = SiteWiseRegressor(Ridge()).fit(
        np.repeat(X, weights, axis=0), np.repeat(y, weights, axis=0)
    )
    assert_allclose(weighted.estimator_.coef_, repeated.estimator_.coef_)


def test_groups_keep_the_sites_of_a_sample_in_one_fold_of_an_inner_search():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 6))
    y = X[:, 0::2] + 0.1 * rng.normal(size=(40, 3))
    search = GridSearchCV(Ridge(), {"alpha": [1e-3, 1e3]}, cv=GroupKFold(4))
    model = SiteWiseRegressor(search).fit(X, y, groups=np.arange(40) // 10)
    assert model.estimator_.best_params_ == {"alpha": 1e-3}


def test_one_dimensional_y_is_a_ring_of_one_site():
    X = np.random.default_rng(0).normal(size=(20, 3))
    model = SiteWiseRegressor(LinearRegression()).fit(X, X @ [1.0, 2.0, 3.0])
    assert model.n_sites_ == 1 and model.predict(X).shape == (20,)
    assert model.predict(np.c_[X, X]).shape == (20, 2)  # a ring of two


@pytest.mark.parametrize(
    "X, y, match",
    [
        (np.zeros((4, 5)), np.zeros((4, 2)), "not a multiple of the 2 sites"),
        (np.zeros((4, 4)), np.zeros((3, 2)), "inconsistent numbers of samples"),
        (np.zeros((4, 4)), np.full((4, 2), np.nan), "y"),
    ],
)
def test_fit_bad_input_leaves_the_fitted_model(X, y, match):
    rng = np.random.default_rng(0)
    X_fit = rng.normal(size=(10, 4))
    model = SiteWiseRegressor(Ridge()).fit(X_fit, X_fit[:, ::2])
    before = model.predict(X_fit)
    with pytest.raises(ValueError, match=match):
        model.fit(X, y)
    assert_array_equal(model.predict(X_fit), before)
    assert model.n_features_in_ == 4


def test_predict_rejects_a_width_that_is_not_whole_sites():
    model = SiteWiseRegressor(Ridge()).fit(np.ones((5, 4)), np.ones((5, 2)))
    with pytest.raises(ValueError, match="expecting 2 features as input per site"):
        model.predict(np.ones((1, 5)))
    with pytest.raises(NotFittedError):
        SiteWiseRegressor(Ridge()).predict(np.ones((1, 4)))


def test_feature_names_are_checked_at_the_fitted_width_only():
    pd = pytest.importorskip("pandas")
    X = pd.DataFrame(np.eye(4), columns=["a0", "b0", "a1", "b1"])
    model = SiteWiseRegressor(Ridge()).fit(X, np.eye(4)[:, ::2])
    with pytest.raises(ValueError, match="feature names"):
        model.predict(X.set_axis(["b0", "a0", "a1", "b1"], axis=1))
    wider = pd.DataFrame(np.ones((1, 6)), columns=list("uvwxyz"))
    assert model.predict(wider).shape == (1, 3)


# --- PeriodicPatches --------------------------------------------------------


def test_patches_by_hand():
    X = np.array([[0.0, 1.0, 2.0, 3.0, 4.0], [10.0, 11.0, 12.0, 13.0, 14.0]])
    patches = PeriodicPatches(radius=2).fit_transform(X)
    assert patches.shape == (2, 25)
    assert_array_equal(patches[0, :5], [3, 4, 0, 1, 2])  # site 0: sites -2..2
    assert_array_equal(patches[0, 10:15], [0, 1, 2, 3, 4])  # site 2
    assert_array_equal(patches[1, 20:], [12, 13, 14, 10, 11])  # site 4


def test_radius_zero_is_the_identity_and_a_large_radius_wraps():
    X = np.array([[1.0, 2.0, 3.0]])
    assert_array_equal(PeriodicPatches(radius=0).fit_transform(X), X)
    wide = PeriodicPatches(radius=2).fit_transform(X)
    assert_array_equal(wide[0, :5], [2, 3, 1, 2, 3])  # around the ring of 3


def test_patches_of_rings_of_any_size_keep_float32():
    patches = PeriodicPatches(radius=1).fit(np.zeros((2, 40)))
    ring = np.arange(6, dtype=np.float32)[None]
    out = patches.transform(ring)
    assert out.dtype == np.float32 and out.shape == (1, 18)
    assert_array_equal(out[0, -3:], [4, 5, 0])


def test_patch_feature_names():
    patches = PeriodicPatches(radius=1).fit(np.zeros((2, 3)))
    assert list(patches.get_feature_names_out()) == [
        "s0_o-1", "s0_o0", "s0_o1", "s1_o-1", "s1_o0", "s1_o1",
        "s2_o-1", "s2_o0", "s2_o1",
    ]
    with pytest.raises(ValueError, match="input_features"):
        patches.get_feature_names_out(["a", "b"])


def test_patches_reject_a_negative_radius():
    with pytest.raises(ValueError, match="radius"):
        PeriodicPatches(radius=-1).fit(np.zeros((2, 3)))


def test_patches_of_blocks_gather_whole_sites():
    X = np.arange(8.0)[None]  # 4 sites x 2 values: site s holds 2s, 2s + 1
    patches = PeriodicPatches(radius=1, n_site_features=2).fit(X)
    out = patches.transform(X)
    assert out.shape == (1, 4 * 3 * 2)
    assert_array_equal(out[0, :6], [6, 7, 0, 1, 2, 3])  # site 0: sites 3, 0, 1
    assert_array_equal(out[0, -6:], [4, 5, 6, 7, 0, 1])  # site 3: sites 2, 3, 0
    assert list(patches.get_feature_names_out()[:3]) == [
        "s0_o-1_v0", "s0_o-1_v1", "s0_o0_v0",
    ]
    # a ring of 3 sites of 2 values, in float32
    small = patches.transform(np.arange(6, dtype=np.float32)[None])
    assert small.dtype == np.float32
    assert_array_equal(small[0, :6], [4, 5, 0, 1, 2, 3])


def test_patches_of_blocks_equal_patches_of_each_value():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(3, 5 * 4))  # 5 sites x 4 values
    blocks = PeriodicPatches(radius=2, n_site_features=4).fit_transform(X)
    for j in range(4):
        one = PeriodicPatches(radius=2).fit_transform(X[:, j::4])
        assert_array_equal(blocks[:, j::4], one)


def test_patches_reject_a_width_that_is_not_whole_blocks():
    with pytest.raises(ValueError, match="n_site_features=3"):
        PeriodicPatches(n_site_features=3).fit(np.zeros((2, 8)))
    patches = PeriodicPatches(radius=1, n_site_features=2).fit(np.zeros((2, 8)))
    with pytest.raises(ValueError, match="multiple of 2"):
        patches.transform(np.zeros((1, 7)))


# --- together ---------------------------------------------------------------


def local_model(radius=1):
    """A local polynomial model shared by all sites of a ring."""
    head = make_pipeline(PolynomialFeatures(2), LinearRegression())
    return make_pipeline(PeriodicPatches(radius=radius), SiteWiseRegressor(head))


def test_a_local_shared_model_is_translation_equivariant():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 10))
    y = np.roll(X, 1, axis=1) * X  # x[i-1] x[i]: local and the same everywhere
    model = local_model().fit(X, y)
    assert_allclose(model.predict(X), y, atol=1e-10)
    ring = rng.normal(size=(3, 17))
    shifted = np.roll(ring, 5, axis=1)
    assert_allclose(model.predict(shifted), np.roll(model.predict(ring), 5, axis=1),
                    atol=1e-10)
    assert_allclose(model.predict(ring), np.roll(ring, 1, axis=1) * ring, atol=1e-10)


def test_local_rff_trained_on_40_sites_predicts_80_as_well():
    train = make_lorenz96(2, 400, lead_steps=5, burn_in=500, random_state=0)
    head = make_pipeline(RFFFeaturizer(n_components=100, wavelength=30.0,
                                       random_state=0), StreamingRidgeCV())
    local_rff = make_pipeline(PeriodicPatches(radius=2), SiteWiseRegressor(head))
    model = SurrogateForecaster(local_rff, ring=True).fit(train.X, train.X + train.y)

    def one_step_error(n_dim):
        test = make_lorenz96(1, 200, n_dim=n_dim, lead_steps=5, burn_in=500,
                             random_state=1)
        # against the increment's scale: persistence scores 1
        return nrmse(test.X + test.y, model.predict(test.X), std=test.y.std())

    error_40, error_80 = one_step_error(40), one_step_error(80)
    assert error_40 < 0.2  # measured 0.10
    assert error_80 < 1.5 * error_40  # measured 0.11


# --- the convolutional featurizer's blocks and a neighbourhood head ----------


def tiny_conv(**params):
    return DiffusionFeaturizer(
        architecture="conv", kernel_size=3, n_hidden=4, n_blocks=2,
        time_embedding_dim=8, max_iter=3, batch_size=16, feature_times=(0, 400),
        random_state=0, **params,
    )


@pytest.fixture(scope="module")
def ring():
    return make_lorenz96(2, 60, n_dim=8, burn_in=200, random_state=0).X


def test_feature_blocks_add_each_block_next_to_the_last(ring):
    featurizer = tiny_conv(feature_blocks="last").fit(ring)
    last = featurizer.transform(ring[:5]).reshape(5, 8, 2, 1, 4)
    featurizer.set_params(feature_blocks="all")  # no refit needed
    every = featurizer.transform(ring[:5]).reshape(5, 8, 2, 2, 4)
    assert_array_equal(every[:, :, :, 1:], last)
    assert not np.allclose(every[:, :, :, 0], every[:, :, :, 1])
    names = featurizer.get_feature_names_out()
    assert list(names[[0, 4, 8, 16]]) == [
        "t0_s0_b1_h0", "t0_s0_b2_h0", "t400_s0_b1_h0", "t0_s1_b1_h0",
    ]
    # block 0 is the input projection, a linear function of the patch
    featurizer.set_params(feature_blocks=[0, 2])
    chosen = featurizer.transform(ring[:5]).reshape(5, 8, 2, 2, 4)
    assert_array_equal(chosen[:, :, :, 1:], last)
    assert_allclose(chosen[:, :, 0, 0], chosen[:, :, 1, 0])  # the same at all times


def test_dense_feature_blocks_are_block_after_block_at_each_time():
    X = np.random.default_rng(0).normal(size=(40, 3))
    featurizer = DiffusionFeaturizer(
        n_hidden=4, n_blocks=2, time_embedding_dim=8, max_iter=3, batch_size=16,
        feature_times=(0, 400), random_state=0,
    ).fit(X)
    last = featurizer.transform(X).reshape(40, 2, 4)
    featurizer.set_params(feature_blocks="all")
    every = featurizer.transform(X).reshape(40, 2, 2, 4)
    assert_array_equal(every[:, :, 1], last)
    assert list(featurizer.get_feature_names_out()[[0, 4, 8]]) == [
        "t0_b1_h0", "t0_b2_h0", "t400_b1_h0",
    ]


@pytest.mark.parametrize("blocks", [[3], [1, 1], [], [0.5], "first", [[1]]])
def test_bad_feature_blocks_are_refused_by_name(ring, blocks):
    with pytest.raises(ValueError, match="feature_blocks"):
        tiny_conv(feature_blocks=blocks).fit(ring)
    fitted = tiny_conv().fit(ring)
    before = fitted.transform(ring[:2])
    with pytest.raises(ValueError, match="feature_blocks"):
        fitted.set_params(feature_blocks=blocks).transform(ring[:2])
    assert_array_equal(fitted.set_params(feature_blocks=None).transform(ring[:2]),
                       before)


@parametrize_with_checks(
    [tiny_conv(feature_blocks="all")],
    expected_failed_checks=lambda _: RINGS_OF_ANY_SIZE,
)
def test_conv_featurizer_with_every_block_is_sklearn_compatible(estimator, check):
    check(estimator)


def test_a_head_on_neighbours_features_is_translation_equivariant(ring):
    featurizer = tiny_conv(feature_blocks="all").fit(ring)
    width = len(featurizer.get_feature_names_out()) // 8
    model = make_pipeline(
        featurizer, PeriodicPatches(2, n_site_features=width),
        SiteWiseRegressor(Ridge(alpha=1e-3)),
    ).fit(ring[:-1], np.diff(ring, axis=0))
    patches = model[1].transform(featurizer.transform(ring[:2]))
    assert patches.shape == (2, 8 * 5 * width)
    shifted = np.roll(ring[:4], 3, axis=1)
    assert_allclose(model.predict(shifted), np.roll(model.predict(ring[:4]), 3, axis=1),
                    atol=1e-8)
    assert model.predict(np.tile(ring[:2], 2)).shape == (2, 16)  # a ring of 16


@pytest.mark.parametrize(
    "estimator",
    [SiteWiseRegressor(Ridge()), PeriodicPatches(),
     PeriodicPatches(1, n_site_features=2)],
)
def test_joblib_round_trip(estimator, tmp_path):
    X = np.random.default_rng(0).normal(size=(20, 12))
    estimator.fit(X, X[:, ::2])
    joblib.dump(estimator, tmp_path / "model.joblib")
    loaded = joblib.load(tmp_path / "model.joblib")
    method = "predict" if hasattr(estimator, "predict") else "transform"
    wider = np.c_[X, X]
    expected = getattr(estimator, method)(wider)
    assert_array_equal(getattr(loaded, method)(wider), expected)
