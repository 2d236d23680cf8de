import os
import warnings

import joblib
import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose, assert_array_equal
from scipy.spatial.distance import pdist
from sklearn.kernel_approximation import RBFSampler
from sklearn.metrics.pairwise import rbf_kernel
from sklearn.utils.estimator_checks import parametrize_with_checks
from threadpoolctl import threadpool_limits

from skdiffusion import RFFFeaturizer


def gamma_of(wavelength):
    """The Gaussian kernel exp(-gamma ||x - y||^2) that RFF(wavelength) estimates."""
    return 2 * np.pi**2 / wavelength**2


def states(n_samples=100, wavelength=1.0, seed=0):
    """States spread so that the kernel takes values across (0, 1]."""
    return 0.1 * wavelength * np.random.default_rng(seed).normal(size=(n_samples, 3))


def rms_kernel_error(features, kernel):
    return np.sqrt(np.mean((features @ features.T - kernel) ** 2))


@parametrize_with_checks([RFFFeaturizer(n_components=8), RFFFeaturizer(n_components=7)])
def test_sklearn_compatible(estimator, check):
    check(estimator)


def test_transform_is_the_papers_formula():
    X = states(50)
    rff = RFFFeaturizer(16, wavelength=0.5, random_state=0).fit(X)
    W = np.random.RandomState(0).standard_normal((3, 8))
    phase = 2 * np.pi * X @ W / 0.5
    expected = np.sqrt(2 / 16) * np.hstack([np.sin(phase), np.cos(phase)])
    assert_allclose(rff.transform(X), expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("wavelength", [0.5, 1.0, 3.0])
def test_rff_and_rbf_sampler_approximate_the_same_gaussian_kernel(wavelength):
    X = states(150, wavelength)
    kernel = rbf_kernel(X, gamma=gamma_of(wavelength))
    assert 0.05 < kernel[np.triu_indices(len(X), 1)].mean() < 0.95  # not trivial
    rff = RFFFeaturizer(4096, wavelength=wavelength, random_state=0)
    rbf = RBFSampler(gamma=gamma_of(wavelength), n_components=4096, random_state=0)
    assert rms_kernel_error(rff.fit_transform(X), kernel) < 0.03
    assert rms_kernel_error(rbf.fit_transform(X), kernel) < 0.03
    # Another gamma is a different kernel: the match above is not a given.
    wrong = rbf_kernel(X, gamma=gamma_of(wavelength) / 4)
    assert rms_kernel_error(rff.fit_transform(X), wrong) > 0.1


def test_kernel_error_decreases_as_one_over_sqrt_n_components():
    X = states(100)
    kernel = rbf_kernel(X, gamma=gamma_of(1.0))
    sizes = np.array([32, 128, 512, 2048])
    def error(n, seed):
        features = RFFFeaturizer(n, random_state=seed).fit_transform(X)
        return rms_kernel_error(features, kernel)

    errors = [np.mean([error(n, seed) for seed in range(8)]) for n in sizes]
    assert np.all(np.diff(errors) < 0)
    slope = np.polyfit(np.log(sizes), np.log(errors), 1)[0]
    assert -0.65 < slope < -0.35


@pytest.mark.parametrize("n_components", [1, 3])
def test_odd_n_components_estimate_the_kernel_without_bias(n_components):
    X = states(20)
    kernel = rbf_kernel(X, gamma=gamma_of(1.0))
    mean_estimate = np.mean(
        [
            (f := RFFFeaturizer(n_components, random_state=seed).fit_transform(X)) @ f.T
            for seed in range(1000)
        ],
        axis=0,
    )
    assert np.abs(mean_estimate - kernel).mean() < 0.05


def test_single_component_is_a_random_phase_cosine():
    X = states(30)
    rff = RFFFeaturizer(1, random_state=0).fit(X)
    assert rff.random_weights_.shape == (3, 1)
    assert 0 <= rff.random_offset_ < 2 * np.pi
    expected = np.sqrt(2) * np.cos(X @ rff.random_weights_ + rff.random_offset_)
    assert_allclose(rff.transform(X), expected, atol=1e-12)


def test_even_n_components_have_no_offset_and_keep_the_draw():
    X = states(5)
    even = RFFFeaturizer(8, random_state=0).fit(X)
    assert even.random_offset_ == 0.0
    assert even.random_weights_.shape == (3, 4)
    W = np.random.RandomState(0).standard_normal((3, 4))
    assert_allclose(even.random_weights_, 2 * np.pi * W)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_preserved(dtype):
    X = states(40)
    features = RFFFeaturizer(64, random_state=0).fit(X).transform(X.astype(dtype))
    assert features.dtype == dtype
    reference = RFFFeaturizer(64, random_state=0).fit(X).transform(X)
    assert_allclose(features, reference, atol=1e-5)


@pytest.mark.parametrize("dtype, atol", [(np.float32, 1e-6), (np.float64, 1e-15)])
def test_chunked_transform_equals_one_chunk(monkeypatch, dtype, atol):
    # 1536 components: under a hundred rows per chunk, so 2000 rows are many.
    X = states(2000).astype(dtype)
    rff = RFFFeaturizer(1536, random_state=0).fit(X)
    chunked = rff.transform(X)
    monkeypatch.setattr(RFFFeaturizer, "_CHUNK_SIZE", 10**9)
    assert_allclose(chunked, rff.transform(X), rtol=0, atol=atol)
    assert_allclose(chunked[-3:], rff.transform(X[-3:]), rtol=0, atol=atol)


@pytest.mark.parametrize("n_components", [1536, 257])
def test_float64_features_match_numpy_in_float64(n_components):
    # float64 sin/cos come from torch: they must keep float64 precision (a
    # float32 computation would be off by about 1e-7), over many chunks, with
    # phases well beyond 2 pi, for the paired and the unpaired columns.
    X = np.random.default_rng(1).normal(size=(300, 3))
    rff = RFFFeaturizer(n_components, wavelength=0.7, random_state=0).fit(X)
    phase = X @ rff.random_weights_
    assert np.abs(phase).max() > 30
    phase[:, -1] += rff.random_offset_
    half = n_components // 2
    expected = np.sqrt(2 / n_components) * np.hstack(
        [np.sin(phase[:, :half]), np.cos(phase)]
    )
    features = rff.transform(X)
    assert features.dtype == np.float64 and features.flags.c_contiguous
    assert features.shape == (300, n_components)
    assert_allclose(features, expected, rtol=0, atol=1e-12)


def test_float32_features_match_numpy_in_float32():
    X = states(300).astype(np.float32)
    rff = RFFFeaturizer(1536, random_state=0).fit(X)
    phase = X @ rff.random_weights_.astype(np.float32)
    expected = np.sqrt(np.float32(2 / 1536)) * np.hstack(
        [np.sin(phase), np.cos(phase)]
    )
    features = rff.transform(X)
    assert features.dtype == np.float32 and features.flags.c_contiguous
    assert_allclose(features, expected, rtol=0, atol=1e-6)


def available_cores():
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count()


def test_float64_sin_cos_respect_thread_limits(monkeypatch):
    # The float64 sin/cos run on torch's threads: as many as torch is allowed
    # by the caller (threadpoolctl or torch.set_num_threads), never more than
    # the cores, and transform leaves the setting as it found it.
    threads_seen = []

    def spy(kernel):
        def run(*args, **kwargs):
            threads_seen.append(torch.get_num_threads())
            return kernel(*args, **kwargs)

        return run

    monkeypatch.setattr(torch, "sin", spy(torch.sin))
    monkeypatch.setattr(torch, "cos", spy(torch.cos))
    X = states(200)
    rff = RFFFeaturizer(1536, random_state=0).fit(X)
    default = torch.get_num_threads()
    expected = rff.transform(X)
    assert threads_seen and set(threads_seen) == {default}
    assert default <= available_cores()
    threads_seen.clear()
    with threadpool_limits(limits=1):
        assert_allclose(rff.transform(X), expected, rtol=0, atol=1e-15)
    assert threads_seen and set(threads_seen) == {1}
    assert torch.get_num_threads() == default


def test_feature_names():
    pd = pytest.importorskip("pandas")
    X = pd.DataFrame(states(10), columns=["x", "y", "z"])
    rff = RFFFeaturizer(4, random_state=0).fit(X)
    assert_array_equal(rff.feature_names_in_, ["x", "y", "z"])
    assert_array_equal(
        rff.get_feature_names_out(),
        ["rfffeaturizer0", "rfffeaturizer1", "rfffeaturizer2", "rfffeaturizer3"],
    )


def test_joblib_round_trip(tmp_path):
    X = states(20)
    rff = RFFFeaturizer(32, random_state=0).fit(X)
    joblib.dump(rff, tmp_path / "rff.joblib")
    loaded = joblib.load(tmp_path / "rff.joblib")
    assert_array_equal(loaded.transform(X), rff.transform(X))


@pytest.mark.parametrize(
    "params, name",
    [({"n_components": 0}, "n_components"), ({"wavelength": 0.0}, "wavelength")],
)
def test_bad_parameters_raise_naming_them(params, name):
    with pytest.raises(ValueError, match=name):
        RFFFeaturizer(**params).fit(states(5))


def test_wrong_number_of_columns_at_transform():
    rff = RFFFeaturizer(4).fit(states(5))
    with pytest.raises(ValueError, match="3 features"):
        rff.transform(np.zeros((2, 2)))


# --- the wavelength in the units of X ----------------------------------------


def test_median_wavelength_makes_the_features_independent_of_units():
    X = np.random.default_rng(0).normal(size=(300, 3)) * [1.0, 5.0, 20.0]
    features = RFFFeaturizer(64, wavelength="median", random_state=0).fit(X)
    in_km = RFFFeaturizer(64, wavelength="median", random_state=0).fit(X / 1000)
    assert in_km.wavelength_ == pytest.approx(features.wavelength_ / 1000)
    np.testing.assert_allclose(in_km.transform(X / 1000), features.transform(X),
                               atol=1e-9)
    assert features.wavelength_ == pytest.approx(np.median(pdist(X)))


def test_median_wavelength_subsamples_and_survives_identical_states():
    X = np.arange(5000.0)[:, None]
    rff = RFFFeaturizer(8, wavelength="median", random_state=0).fit(X)
    assert rff.wavelength_ == pytest.approx(np.median(pdist(X[::5])))
    same = RFFFeaturizer(8, wavelength="median").fit(np.ones((4, 2)))
    assert same.wavelength_ == 1.0


def test_a_wavelength_far_below_the_spread_of_the_states_warns():
    X = np.random.default_rng(0).normal(size=(300, 3))
    with pytest.warns(UserWarning, match="wavelength='median'") as record:
        RFFFeaturizer(16, wavelength=1.0).fit(10 * X)  # unscaled states
    assert record[0].filename == __file__
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        RFFFeaturizer(16, wavelength=1.0).fit(X)  # median distance about 2.3
        RFFFeaturizer(16, wavelength="median").fit(10 * X)
