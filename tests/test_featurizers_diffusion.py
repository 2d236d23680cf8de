"""Tests of skdiffusion.DiffusionFeaturizer.

One small network is trained once on Lorenz 63 (module fixture) and shared by
the tests of what training achieves; the other tests use tiny networks and a
few steps. torch and BLAS run on one thread: these problems are too small to
gain from a second one, and on a shared machine waiting threads spin.
"""

import io
import pickle

import joblib
import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import Ridge
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.utils.estimator_checks import parametrize_with_checks
from sklearn.utils.validation import check_is_fitted
from threadpoolctl import threadpool_limits

from skdiffusion import DiffusionFeaturizer
from skdiffusion.datasets import (
    LORENZ63_SCALE,
    LORENZ63_SHIFT,
    make_lorenz63,
    make_lorenz96,
)
from skdiffusion.diffusion import ConvDenoiser, Denoiser
from skdiffusion.engine import TrainingDivergedError
from skdiffusion.metrics import hellinger_distance

# Trained once on Lorenz 63: enough to learn the attractor, a few seconds.
SMALL = dict(
    n_hidden=32,
    n_blocks=2,
    time_embedding_dim=32,
    max_iter=150,
    batch_size=256,
    learning_rate=3e-3,
    warmup_iter=20,
    eval_every=25,
    device="cpu",
    random_state=0,
)


def tiny(**params):
    """A featurizer that fits in milliseconds."""
    defaults = dict(
        feature_times=(0, 400),
        n_hidden=8,
        n_blocks=1,
        time_embedding_dim=8,
        max_iter=4,
        batch_size=16,
        eval_every=2,
        device="cpu",
        random_state=0,
    )
    return DiffusionFeaturizer(**{**defaults, **params})


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(limits=1, user_api="blas"):
        yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def lorenz():
    """Training and held-out Lorenz 63 data in model (raw) units."""
    train = make_lorenz63(4, 1000, normalize=False, random_state=0)
    test = make_lorenz63(2, 2000, normalize=False, random_state=1)
    return train, test


@pytest.fixture(scope="module")
def trained(lorenz, one_torch_thread):
    train, _ = lorenz
    return DiffusionFeaturizer(**SMALL).fit(train.X)


@pytest.fixture(scope="module")
def untrained(lorenz, one_torch_thread):
    train, _ = lorenz
    return DiffusionFeaturizer(**{**SMALL, "max_iter": 0}).fit(train.X)


@pytest.fixture
def states():
    return np.random.default_rng(0).normal(size=(40, 3))


def _expected_failures(estimator):
    # float64 output of a float32 network: its last bits move with the number
    # of rows at once (the products block differently); the check asks 1e-7
    failures = {
        "check_methods_subset_invariance": "float32 network: last-bit changes "
        "with the number of rows transformed at once"
    }
    if estimator.architecture == "dense":
        return failures
    # a convolutional network takes rings of any size: a width other than
    # the fitted one is valid input, not an error
    reason = "rings of any size are valid"
    return {
        **failures,
        "check_n_features_in_after_fitting": reason,
        "check_transformer_general": reason,
    }


@parametrize_with_checks(
    [tiny(), tiny(dtype="float32"), tiny(architecture="conv", kernel_size=3)],
    expected_failed_checks=_expected_failures,
)
def test_sklearn_compatible(estimator, check):
    check(estimator)


# --- what training achieves -------------------------------------------------


def test_training_lowers_the_denoising_loss(lorenz, trained, untrained):
    _, test = lorenz
    assert -trained.score(test.X) < 0.9 * -untrained.score(test.X)
    assert trained.loss_curve_[-1] < 0.9 * trained.loss_curve_[0]


def test_samples_are_closer_to_the_attractor_than_noise(lorenz, trained):
    _, test = lorenz
    samples = trained.sample(2000, n_steps=50, random_state=0)
    noise = np.random.default_rng(0).normal(size=(2000, 3))

    def distance(states):  # on the paper's box of normalised states
        normalised = (states - LORENZ63_SHIFT) / LORENZ63_SCALE
        reference = (test.X - LORENZ63_SHIFT) / LORENZ63_SCALE
        return hellinger_distance(normalised, reference, bins=10)

    assert samples.dtype == np.float64 and samples.shape == (2000, 3)
    assert distance(samples) < distance(noise) - 0.2


def test_trained_features_beat_untrained_for_the_increment(lorenz, trained, untrained):
    train, test = lorenz

    def rmse(featurizer):
        head = Ridge(alpha=1e-4).fit(featurizer.transform(train.X), train.y)
        error = head.predict(featurizer.transform(test.X)) - test.y
        return np.sqrt(np.mean(error**2))

    assert rmse(trained) < 0.5 * rmse(untrained)


def test_untrained_baseline_is_fitted(untrained):
    check_is_fitted(untrained)
    assert untrained.n_iter_ == 0 and untrained.loss_curve_ == []


def test_ensemble_spread_grows_with_tau(lorenz, trained):
    _, test = lorenz
    centres = test.X[::400]

    def spread(tau):
        ensemble = trained.sample_ensemble(centres, tau, 16, random_state=0)
        assert ensemble.shape == (len(centres), 16, 3)
        return np.mean(np.abs(ensemble - centres[:, None]))

    np.testing.assert_allclose(
        trained.sample_ensemble(centres, 0, 2)[:, 1], centres, rtol=1e-6
    )
    assert 0 < spread(30) < spread(300)


# --- transform ----------------------------------------------------------------


def test_transform_equals_the_network_at_each_time(trained, lorenz):
    X = lorenz[1].X[:50]
    assert trained.network_params_["activation"] == "silu"
    network = Denoiser(3, n_hidden=32, n_blocks=2, time_embedding_dim=32,
                       activation="silu")
    state = trained.network_state_
    network.load_state_dict({name: torch.from_numpy(w) for name, w in state.items()})
    captured = []
    network.blocks[-1].register_forward_hook(lambda m, i, out: captured.append(out))
    z = torch.from_numpy(((X - trained.mean_) / trained.scale_).astype(np.float32))
    with torch.no_grad():
        for time in (0, 50, 100, 200, 400, 600):  # the default feature_times
            network(z, torch.full((len(X),), time))  # the per-sample FiLM path
    expected = torch.cat(captured, dim=1).numpy()

    features = trained.transform(X)
    assert features.dtype == np.float64 and features.shape == (50, 6 * 32)
    np.testing.assert_allclose(features, expected, rtol=1e-5, atol=1e-6)


def test_feature_names_give_time_and_unit(trained):
    names = trained.get_feature_names_out()
    assert len(names) == 6 * 32
    assert names[0] == "t0_h0" and names[32 * 4 + 17] == "t400_h17"


def test_works_in_pipelines_frozen_and_with_pandas_output(trained, lorenz):
    train, _ = lorenz
    pipeline = make_pipeline(FrozenEstimator(trained), Ridge(alpha=1e-4))
    pipeline.fit(train.X[:200], train.y[:200])  # does not retrain
    assert pipeline[0].estimator is trained and trained.n_iter_ == 150
    frame = clone(trained).set_params(max_iter=0).set_output(transform="pandas")
    columns = frame.fit_transform(train.X[:5]).columns
    assert list(columns[:2]) == ["t0_h0", "t0_h1"]


def test_search_compares_featurizers_by_score(states):
    search = GridSearchCV(tiny(learning_rate=1e-2), {"max_iter": [0, 30]}, cv=2)
    search.fit(states)
    assert search.best_params_ == {"max_iter": 30}


@pytest.mark.parametrize("input_dtype", [np.float32, np.float64])
def test_outputs_have_the_dtype_asked_for_whatever_the_input(input_dtype, states):
    featurizer = tiny().fit(states)
    features = featurizer.transform(states.astype(input_dtype))
    assert features.dtype == np.float64 and features.flags.c_contiguous
    assert featurizer.sample(3, n_steps=2, random_state=0).dtype == np.float64
    featurizer.set_params(dtype="float32")  # read at use: no refit
    narrow = featurizer.transform(states.astype(input_dtype))
    assert narrow.dtype == np.float32 and narrow.flags.c_contiguous
    # the network is float32: the float64 output holds exactly its values
    np.testing.assert_array_equal(narrow, features)
    members = featurizer.sample_ensemble(states[:2], 100, 3, random_state=0)
    assert members.dtype == np.float32
    with pytest.raises(ValueError, match="dtype"):
        featurizer.set_params(dtype="float16").transform(states)


def test_joblib_round_trip_gives_identical_transforms(trained, states):
    before = trained.transform(states)
    buffer = io.BytesIO()
    joblib.dump(trained, buffer)
    buffer.seek(0)
    loaded = joblib.load(buffer)
    np.testing.assert_array_equal(loaded.transform(states), before)
    loaded.set_params(device="cpu")
    np.testing.assert_array_equal(loaded.transform(states), before)


def test_pickled_state_holds_no_torch_module(trained, states):
    trained.transform(states)  # builds and caches the network
    state = trained.__getstate__()
    assert state["_models"] == {}
    assert all(isinstance(v, np.ndarray) for v in state["network_state_"].values())


# --- fit: warm start, interrupt, divergence -----------------------------------


def test_warm_start_continues_training(states):
    featurizer = tiny(max_iter=4, eval_every=2).fit(states)
    curve = list(featurizer.loss_curve_)
    featurizer.set_params(warm_start=True, max_iter=0)
    before = featurizer.transform(states)
    # new data: weights and standardisation stay those of the first fit
    featurizer.fit(states * 3 + 1)
    np.testing.assert_array_equal(featurizer.transform(states), before)

    featurizer.set_params(max_iter=4).fit(states)
    assert featurizer.n_iter_ == 8
    assert featurizer.loss_curve_[:2] == curve and len(featurizer.loss_curve_) == 4
    assert featurizer._optimizer_state["state"][0]["step"] == 8


def test_warm_start_rejects_a_new_network_shape(states):
    featurizer = tiny().fit(states)
    with pytest.raises(ValueError, match="warm_start"):
        featurizer.set_params(warm_start=True, n_hidden=4).fit(states)


def test_warm_start_rejects_a_new_activation(states):
    featurizer = tiny(activation="relu").fit(states)
    with pytest.raises(ValueError, match="activation='gelu' .fitted with 'relu'."):
        featurizer.set_params(warm_start=True, activation="gelu").fit(states)
    assert featurizer.network_params_["activation"] == "relu"


@pytest.mark.parametrize(
    "params",
    [
        {"activation": "gelu"},
        {"n_hidden": 4},
        {"n_blocks": 2},
        {"time_embedding_dim": 16},
        {"schedule": "linear"},
        {"n_diffusion_steps": 500},
        {"parameterization": "noise"},
    ],
)
def test_network_parameters_changed_after_fit_are_refused_at_use(states, params):
    featurizer = tiny(activation="relu").fit(states)
    features = featurizer.transform(states)
    featurizer.set_params(**params)  # changed, not refitted
    name = next(iter(params))
    for use in (
        lambda: featurizer.transform(states),
        lambda: featurizer.sample(2, n_steps=2),
        lambda: featurizer.sample_ensemble(states[:2], 10, 2),
        lambda: featurizer.score(states),
    ):
        with pytest.raises(ValueError, match=f"{name}=.* changed after fit"):
            use()
    featurizer.set_params(**tiny(activation="relu").get_params())  # set back
    np.testing.assert_array_equal(featurizer.transform(states), features)


def test_feature_times_changed_after_fit_take_effect_without_refit(states):
    featurizer = tiny(feature_times=(0, 50, 400)).fit(states)
    all_times = featurizer.transform(states)
    weights = dict(featurizer.network_state_)
    featurizer.set_params(feature_times=(50, 0))
    features = featurizer.transform(states)
    n_hidden = featurizer.n_hidden
    # columns of time 50 then time 0, as in the six-time layout
    np.testing.assert_array_equal(
        features[:, :n_hidden], all_times[:, n_hidden : 2 * n_hidden]
    )
    np.testing.assert_array_equal(features[:, n_hidden:], all_times[:, :n_hidden])
    names = featurizer.get_feature_names_out()
    assert list(names[[0, n_hidden]]) == ["t50_h0", "t0_h0"]
    assert featurizer.network_state_.keys() == weights.keys()
    featurizer.set_params(feature_times=(2000,))
    with pytest.raises(ValueError, match="feature_times must lie in 0..1000"):
        featurizer.transform(states)


def test_same_seed_gives_the_same_fit(states):
    first, second = tiny().fit(states), tiny().fit(states)
    for name, weights in first.network_state_.items():
        np.testing.assert_array_equal(second.network_state_[name], weights)


def test_interrupt_keeps_the_weights_trained_so_far(states, interrupt_adam_after):
    untrained_state = tiny(max_iter=0).fit(states).network_state_
    interrupt_adam_after(3)
    with pytest.warns(UserWarning, match="interrupted after 3 steps"):
        featurizer = tiny(max_iter=10).fit(states)
    check_is_fitted(featurizer)
    assert featurizer.n_iter_ == 3
    assert not np.array_equal(
        featurizer.network_state_["in_proj.weight"], untrained_state["in_proj.weight"]
    )
    assert featurizer.transform(states).shape == (40, 16)


def test_divergence_raises_and_leaves_the_featurizer_unfitted(states):
    featurizer = tiny(learning_rate=1e6, max_iter=20)
    with pytest.raises(TrainingDivergedError, match="diverged.*lower learning rate"):
        featurizer.fit(states)
    with pytest.raises(NotFittedError):
        check_is_fitted(featurizer)
    assert not hasattr(featurizer, "n_features_in_")


def test_failed_refit_keeps_the_previous_fit(states):
    featurizer = tiny().fit(states)
    before = featurizer.transform(states)
    with pytest.raises(ValueError, match="diverged"):
        featurizer.set_params(learning_rate=1e6, max_iter=20).fit(states[:, :2])
    assert featurizer.n_features_in_ == 3 and featurizer.n_iter_ == 4
    np.testing.assert_array_equal(featurizer.transform(states), before)


# --- options --------------------------------------------------------------------


def test_validation_split_records_scores(states):
    featurizer = tiny(validation_fraction=0.25).fit(states)
    assert len(featurizer.validation_scores_) == len(featurizer.loss_curve_) == 2
    assert all(score < 0 for score in featurizer.validation_scores_)
    assert tiny().fit(states).validation_scores_ is None


def test_ema_weights_are_used_for_inference(states):
    raw, averaged = tiny().fit(states), tiny(ema_decay=0.5).fit(states)
    assert raw.ema_state_ is None and averaged.ema_state_ is not None
    for name, weights in raw.network_state_.items():  # same raw training
        np.testing.assert_array_equal(averaged.network_state_[name], weights)
    assert not np.array_equal(raw.transform(states), averaged.transform(states))


def test_mixed_precision_trains_a_float32_featurizer(states):
    featurizer = tiny(mixed_precision=True).fit(states)
    assert featurizer.network_state_["in_proj.weight"].dtype == np.float32
    assert np.isfinite(featurizer.loss_curve_).all()
    assert featurizer.transform(states).dtype == np.float64


def test_score_is_deterministic(trained, states):
    assert trained.score(states) == trained.score(states)


def test_verbose_prints_progress_and_silent_does_not(states, capsys):
    tiny().fit(states).sample(3, n_steps=2)
    assert capsys.readouterr() == ("", "")
    tiny(verbose=1).fit(states).transform(states)
    err = capsys.readouterr().err
    # fit reports its steps with time left; transform is not a long call
    assert "DiffusionFeaturizer: 4/4 step" in err and "loss" in err
    assert "transform" not in err


def test_sample_ddim_is_deterministic(trained):
    first = trained.sample(5, n_steps=10, method="ddim", random_state=0)
    np.testing.assert_array_equal(
        trained.sample(5, n_steps=10, method="ddim", random_state=0), first
    )


# --- bad input ------------------------------------------------------------------


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_non_finite_states_are_rejected(value, states):
    bad = states.copy()
    bad[3, 1] = value
    with pytest.raises(ValueError, match="NaN|infinity"):
        tiny().fit(bad)
    with pytest.raises(ValueError, match="NaN|infinity"):
        tiny().fit(states).transform(bad)


def test_wrong_number_of_columns_is_rejected(states):
    featurizer = tiny().fit(states)
    for method in (featurizer.transform, featurizer.score):
        with pytest.raises(ValueError, match="X has 2 features"):
            method(states[:, :2])
    with pytest.raises(ValueError, match="X has 2 features"):
        featurizer.sample_ensemble(states[:, :2], 10, 2)


@pytest.mark.parametrize(
    "params, name",
    [
        (dict(feature_times=(0, 1001)), "feature_times"),
        (dict(feature_times=(-1,)), "feature_times"),
        (dict(feature_times=(10.5,)), "feature_times"),
        (dict(feature_times=(10, 10)), "feature_times"),
        (dict(feature_times=()), "feature_times"),
        (dict(feature_times=(0, 60), n_diffusion_steps=50), "feature_times"),
        (dict(schedule="quadratic"), "schedule"),
        (dict(activation="tanh"), "activation"),
        (dict(parameterization="score"), "parameterization"),
        (dict(device="tpu-like"), "device"),
        (dict(validation_fraction=0.01), "validation_fraction"),
    ],
)
def test_bad_parameters_raise_value_error_naming_them(params, name, states):
    featurizer = tiny(**params)
    with pytest.raises(ValueError, match=name):
        featurizer.fit(states)
    assert not hasattr(featurizer, "n_features_in_")


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda f, X: f.sample(0), "n_samples"),
        (lambda f, X: f.sample(2, method="euler"), "method"),
        (lambda f, X: f.sample_ensemble(X, 1001, 2), "tau"),
        (lambda f, X: f.sample_ensemble(X, 10, 0), "n_members"),
    ],
)
def test_bad_sampling_arguments_raise_value_error_naming_them(call, name, states):
    with pytest.raises(ValueError, match=name):
        call(tiny().fit(states), states)


def test_not_fitted_methods_raise(states):
    for call in (lambda f: f.transform(states), lambda f: f.sample(2)):
        with pytest.raises(NotFittedError):
            call(tiny())


# --- the convolutional network for fields on a ring ---------------------------


@pytest.fixture(scope="module")
def ring():
    """Lorenz 96 states on 12 sites."""
    return make_lorenz96(4, 150, n_dim=12, burn_in=200, random_state=0).X


def tiny_conv(**params):
    return tiny(architecture="conv", kernel_size=3, **params)


def test_conv_network_is_translation_equivariant():
    torch.manual_seed(0)
    network = ConvDenoiser(8, n_blocks=2, time_embedding_dim=16, kernel_size=3)
    for block in network.blocks:
        block.gamma.data.fill_(0.5)  # make the blocks count
    z, t = torch.randn(4, 12), torch.tensor([1, 5, 100, 999])
    torch.testing.assert_close(
        network(torch.roll(z, 3, dims=1), t), torch.roll(network(z, t), 3, dims=1)
    )
    assert network(torch.randn(2, 80), 3).shape == (2, 80)  # any ring size


def test_conv_features_are_per_site_and_site_major(ring):
    featurizer = tiny_conv(feature_times=(0, 400)).fit(ring)
    features = featurizer.transform(ring[:5])
    assert features.shape == (5, 12 * 2 * 8)
    names = featurizer.get_feature_names_out()
    # every block (here one) is the conv default: the block is named
    assert list(names[[0, 8, 16]]) == ["t0_s0_b1_h0", "t400_s0_b1_h0", "t0_s1_b1_h0"]
    # rolling the ring rolls the sites' features
    rolled = featurizer.transform(np.roll(ring[:5], 2, axis=1)).reshape(5, 12, -1)
    np.testing.assert_allclose(
        rolled, np.roll(features.reshape(5, 12, -1), 2, axis=1), atol=1e-5
    )


def test_conv_featurizer_takes_rings_of_another_size(ring):
    featurizer = tiny_conv(feature_times=(0,)).fit(ring)
    assert featurizer.mean_.shape == featurizer.scale_.shape == (1,)
    wider = np.tile(ring[:3], 2)  # 24 sites, the same field twice
    features = featurizer.transform(wider).reshape(3, 24, -1)
    np.testing.assert_allclose(
        features[:, :12], featurizer.transform(ring[:3]).reshape(3, 12, -1),
        atol=1e-5,
    )
    assert featurizer.sample_ensemble(wider, 50, 2).shape == (3, 2, 24)
    assert featurizer.sample(2, n_steps=3).shape == (2, 12)


def test_conv_weights_do_not_depend_on_the_ring_size(ring):
    small = tiny_conv().fit(ring)
    large = tiny_conv().fit(np.tile(ring, 3))
    assert {k: v.shape for k, v in small.network_state_.items()} == {
        k: v.shape for k, v in large.network_state_.items()
    }


@pytest.mark.parametrize(
    ("architecture", "width", "times", "blocks"),
    [("dense", 256, (0, 50, 100, 200, 400, 600), 1),
     ("conv", 32, (0, 100, 400, 700, 900), 2)],
)
def test_default_width_times_and_blocks_follow_the_architecture(
    ring, architecture, width, times, blocks
):
    featurizer = DiffusionFeaturizer(
        architecture=architecture, n_blocks=2, time_embedding_dim=8, max_iter=1,
        batch_size=8, random_state=0,
    ).fit(ring)
    n_sites = 1 if architecture == "dense" else ring.shape[1]
    assert featurizer.transform(ring[:2]).shape == (
        2, n_sites * len(times) * blocks * width
    )
    # dense: the paper's last block; conv: every block (named) at each time
    name = "h0" if architecture == "dense" else "s0_b1_h0"
    assert featurizer.get_feature_names_out()[blocks * width] == f"t{times[1]}_{name}"
    params = featurizer.get_params()
    assert params["n_hidden"] is params["parameterization"] is None  # unchanged
    expected = "velocity" if architecture == "dense" else "noise"
    assert featurizer._parameterization() == expected
    if architecture == "conv":  # kernel 3: one site to each side per convolution
        state = featurizer.network_state_
        assert state["in_proj.weight"].shape == (32, 1, 3)
        assert state["blocks.0.fc1.weight"].shape == (32, 32, 3)


@pytest.mark.parametrize("parameterization", ["velocity", "noise"])
def test_the_parameterization_default_trains_as_the_named_one(
    ring, parameterization
):
    architecture = "dense" if parameterization == "velocity" else "conv"
    common = dict(architecture=architecture, n_hidden=4, n_blocks=1,
                  time_embedding_dim=8, max_iter=3, batch_size=8, random_state=0)
    default = DiffusionFeaturizer(**common).fit(ring)
    named = DiffusionFeaturizer(parameterization=parameterization, **common).fit(ring)
    np.testing.assert_array_equal(default.transform(ring[:3]),
                                  named.transform(ring[:3]))
    assert default.score(ring) == named.score(ring)


def test_a_conv_pickle_from_before_the_recipe_defaults_keeps_its_features(ring):
    # then None meant 64 channels, pseudo-times 0, 100, 400 and the last block
    old_recipe = dict(n_hidden=64, feature_times=(0, 100, 400), feature_blocks="last")
    featurizer = DiffusionFeaturizer(
        architecture="conv", kernel_size=5, parameterization="velocity",
        n_blocks=1, time_embedding_dim=8, max_iter=2, batch_size=8, random_state=0,
        **old_recipe,
    ).fit(ring)
    state = featurizer.__getstate__()
    del state["_defaults_version"]  # as pickled then, with the defaults as None
    state.update(n_hidden=None, feature_times=None, feature_blocks=None)
    state["network_params_"] = {**state["network_params_"], "n_hidden": None}
    old = DiffusionFeaturizer.__new__(DiffusionFeaturizer)
    old.__setstate__(state)
    np.testing.assert_array_equal(old.transform(ring[:3]),
                                  featurizer.transform(ring[:3]))
    assert list(old.get_feature_names_out()) == list(
        featurizer.get_feature_names_out()
    )
    assert old.get_params()["n_hidden"] == 64
    # a pickle of today's featurizer keeps its None values
    today = pickle.loads(pickle.dumps(tiny_conv(n_hidden=None).fit(ring)))
    assert today.get_params()["n_hidden"] is None
    assert today.transform(ring[:1]).shape[1] == ring.shape[1] * 2 * 32


def test_a_pickle_from_before_the_dtype_parameter_keeps_float32(states):
    featurizer = tiny().fit(states)
    state = featurizer.__getstate__()
    del state["dtype"]  # as pickled before dtype existed
    old = DiffusionFeaturizer.__new__(DiffusionFeaturizer)
    old.__setstate__(state)
    assert old.transform(states).dtype == np.float32
    np.testing.assert_array_equal(old.transform(states), featurizer.transform(states))
