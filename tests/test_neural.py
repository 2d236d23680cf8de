"""Tests of skdiffusion.neural: DenseRegressor and ResidualRegressor.

Tiny networks and few epochs throughout. torch runs on one thread here: these
networks are too small to gain from a second one, and on a loaded machine
torch's spinning OpenMP threads make every small op many times slower.
"""

import pickle
import warnings

import joblib
import numpy as np
import pytest
import torch
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.metrics import r2_score
from sklearn.utils.estimator_checks import parametrize_with_checks
from sklearn.utils.validation import check_is_fitted

from skdiffusion.neural import DenseRegressor, ResidualRegressor

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

ESTIMATORS = [DenseRegressor, ResidualRegressor]


def tiny(cls, **params):
    """A small, quick-to-train instance of ``cls``."""
    size = {"hidden_layer_sizes": (16,)} if cls is DenseRegressor else {"n_hidden": 16}
    defaults = {"learning_rate": 1e-2, "batch_size": 32, "max_iter": 60}
    return cls(**size, **{**defaults, "random_state": 0, **params})


@pytest.fixture(autouse=True, scope="module")
def _one_thread(one_torch_thread):
    """torch on one thread for this module (the fixture is in conftest)."""


def smooth_data(n_samples, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, size=(n_samples, 2))
    y = np.sin(2 * X[:, 0]) + X[:, 0] * X[:, 1]
    return X, y


def _float32_batches(estimator):
    # A float32 network's outputs move in their last bits with the number of
    # rows predicted at once (the matrix products block differently); the
    # check asks for 1e-7 agreement, about one float32 ulp.
    return {
        "check_methods_subset_invariance": "float32 network: last-bit changes "
        "with the number of rows predicted at once"
    }


@parametrize_with_checks(
    [
        tiny(DenseRegressor),
        tiny(ResidualRegressor, n_blocks=1),
    ],
    expected_failed_checks=_float32_batches,
)
def test_sklearn_compatible(estimator, check):
    check(estimator)


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_fits_a_smooth_function(cls):
    X, y = smooth_data(1200)
    reg = tiny(cls, max_iter=60).fit(X[:1000], y[:1000])
    assert r2_score(y[1000:], reg.predict(X[1000:])) > 0.95


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_same_seed_same_model(cls):
    X, y = smooth_data(100)
    first = tiny(cls, max_iter=3).fit(X, y).predict(X)
    again = tiny(cls, max_iter=3).fit(X, y).predict(X)
    other = tiny(cls, max_iter=3, random_state=1).fit(X, y).predict(X)
    np.testing.assert_array_equal(first, again)
    assert not np.allclose(first, other)


def test_seeding_leaves_torch_global_rng_alone():
    X, y = smooth_data(50)
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    tiny(DenseRegressor, max_iter=1).fit(X, y)
    torch.testing.assert_close(torch.rand(3), expected)


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_early_stopping_stops_early_and_keeps_the_best(cls):
    # Pure-noise targets: the validation score cannot keep improving.
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(200, 2)), rng.normal(size=200)
    reg = tiny(cls, max_iter=2000, early_stopping=True, n_iter_no_change=3)
    reg.set_params(eval_every=10).fit(X, y)
    assert reg.n_iter_ < 2000
    assert len(reg.validation_scores_) == len(reg.loss_curve_) == reg.n_iter_ // 10
    assert reg.best_validation_score_ == max(reg.validation_scores_)
    assert reg.best_loss_ is None


def test_without_early_stopping_stops_when_the_loss_stalls():
    X, y = smooth_data(100)
    reg = tiny(DenseRegressor, max_iter=500, tol=10.0, n_iter_no_change=2)
    reg.set_params(eval_every=5).fit(X, y)
    assert reg.n_iter_ == 15  # the first evaluation sets the bar, then 2 misses
    assert reg.validation_scores_ is None and reg.best_validation_score_ is None
    assert reg.best_loss_ == min(reg.loss_curve_)


@pytest.fixture
def adam_rates(monkeypatch):
    """The learning rate of every Adam step taken from here on, in order."""
    rates, step = [], torch.optim.Adam.step

    def recording_step(self, *args, **kwargs):
        rates.append(self.param_groups[0]["lr"])
        return step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "step", recording_step)
    return rates


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_cosine_schedule_decays_to_zero_by_the_last_step(adam_rates, cls):
    X, y = smooth_data(40)
    tiny(cls, lr_schedule="cosine", batch_size=10, max_iter=12).fit(X, y)
    assert len(adam_rates) == 12  # max_iter counts steps
    assert adam_rates[0] == pytest.approx(1e-2)
    assert adam_rates[6] == pytest.approx(0.5e-2)  # half way: cos(pi / 2) = 0
    assert adam_rates[-1] == pytest.approx(0.5e-2 * (1 + np.cos(np.pi * 11 / 12)))
    assert adam_rates[-1] < 2e-4
    assert np.all(np.diff(adam_rates) < 0)


def test_constant_schedule_keeps_the_learning_rate(adam_rates):
    X, y = smooth_data(40)
    reg = tiny(DenseRegressor, batch_size=10, max_iter=12)
    assert reg.lr_schedule == "constant"  # the default
    reg.fit(X, y)
    assert adam_rates == [1e-2] * 12


def test_each_warm_started_fit_runs_the_whole_schedule(adam_rates):
    X, y = smooth_data(40)
    reg = tiny(DenseRegressor, lr_schedule="cosine", batch_size=20, max_iter=2)
    reg.set_params(warm_start=True).fit(X, y).fit(X, y)
    assert adam_rates == pytest.approx([1e-2, 0.5e-2] * 2)
    assert reg.n_iter_ == 4


def test_reaching_max_iter_warns():
    X, y = smooth_data(50)
    with pytest.warns(ConvergenceWarning, match="maximum iterations"):
        tiny(DenseRegressor, max_iter=2, tol=0.0).fit(X, y)
    with warnings.catch_warnings():  # no stopping rule, nothing to warn of
        warnings.simplefilter("error")
        tiny(DenseRegressor, max_iter=2, n_iter_no_change=None).fit(X, y)


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_predictions_are_in_the_units_of_the_targets(cls):
    X, y = smooth_data(300)
    Y = np.column_stack([1e4 + 100 * y, np.full_like(y, -7.5)])
    reg = tiny(cls, max_iter=300).fit(X, Y)
    np.testing.assert_allclose(reg.y_mean_, Y.mean(axis=0))
    np.testing.assert_allclose(reg.y_scale_, [Y[:, 0].std(), 1.0])
    np.testing.assert_allclose(reg.x_mean_, X.mean(axis=0))
    pred = reg.predict(X)
    # Exactly constant target: zero in standardised units, then shifted back.
    np.testing.assert_allclose(pred[:, 1], -7.5, atol=0.05)
    assert r2_score(Y[:, 0], pred[:, 0]) > 0.9


@pytest.mark.parametrize(
    ("y_shape", "pred_shape"), [((40,), (40,)), ((40, 1), (40, 1)), ((40, 3), (40, 3))]
)
def test_prediction_shape_follows_y(y_shape, pred_shape):
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(40, 2)), rng.normal(size=y_shape)
    reg = tiny(ResidualRegressor, max_iter=2).fit(X, y)
    assert reg.n_outputs_ == (y_shape[1] if len(y_shape) == 2 else 1)
    assert reg.predict(X).shape == pred_shape


@pytest.mark.parametrize(
    ("dtype", "expected"), [(np.float32, np.float32), (int, np.float64)]
)
def test_prediction_dtype_follows_x(dtype, expected):
    X, y = smooth_data(40)
    reg = tiny(DenseRegressor, max_iter=2).fit(X, y)
    assert reg.predict((X * 10).astype(dtype)).dtype == expected


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_joblib_round_trip_predicts_the_same(cls, tmp_path):
    X, y = smooth_data(60)
    reg = tiny(cls, max_iter=3).fit(X, y)
    joblib.dump(reg, tmp_path / "reg.joblib")
    loaded = joblib.load(tmp_path / "reg.joblib")
    np.testing.assert_array_equal(loaded.predict(X), reg.predict(X))
    # The device can be chosen after loading.
    np.testing.assert_array_equal(
        loaded.set_params(device="cpu").predict(X), reg.predict(X)
    )


def test_pickle_holds_cpu_tensors_and_warm_start_resumes():
    X, y = smooth_data(60)
    reg = tiny(DenseRegressor, max_iter=2, warm_start=True).fit(X, y)
    loaded = pickle.loads(pickle.dumps(reg))
    tensors = [*loaded.module_.parameters()]
    tensors += [
        v for s in loaded._optimizer_state["state"].values() for v in s.values()
    ]
    assert all(t.device.type == "cpu" for t in tensors)
    loaded.set_params(eval_every=1).fit(X, y)
    assert loaded.n_iter_ == 4 and len(loaded.loss_curve_) == 3
    # Training continues from the fitted weights instead of starting over.
    assert loaded.loss_curve_[2] < loaded.loss_curve_[0]


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_divergence_raises_and_leaves_the_estimator_unfitted(cls):
    X, y = smooth_data(60)
    reg = tiny(cls, learning_rate=1e10, max_iter=5)
    with pytest.raises(ValueError, match="diverged.*lower learning rate"):
        reg.fit(X, y)
    with pytest.raises(NotFittedError):
        check_is_fitted(reg)


def test_divergence_in_a_warm_start_keeps_the_previous_model():
    X, y = smooth_data(60)
    reg = tiny(DenseRegressor, max_iter=2, warm_start=True).fit(X, y)
    before = reg.predict(X)
    reg.set_params(learning_rate=1e10)
    with pytest.raises(ValueError, match="diverged"):
        reg.fit(X, y)
    np.testing.assert_array_equal(reg.predict(X), before)
    assert reg.n_iter_ == 2


class _InterruptedDense(DenseRegressor):
    """Raises KeyboardInterrupt at the 10th training forward pass."""

    def _build_module(self, n_features, n_outputs):
        module = super()._build_module(n_features, n_outputs)
        calls = []

        def interrupt(mod, args):
            if mod.training:
                calls.append(1)
                if len(calls) == 10:
                    raise KeyboardInterrupt

        module.register_forward_pre_hook(interrupt)
        return module


def test_keyboard_interrupt_warns_and_keeps_a_usable_model():
    X, y = smooth_data(96)
    reg = _InterruptedDense((16,), batch_size=32, max_iter=50, random_state=0)
    reg.set_params(eval_every=3)
    with pytest.warns(UserWarning, match="interrupted after 9 steps"):
        reg.fit(X, y)
    check_is_fitted(reg)
    # 9 steps applied; the 10th was interrupted in its forward pass
    assert reg.n_iter_ == 9 and len(reg.loss_curve_) == 3
    assert np.isfinite(reg.predict(X)).all()


@pytest.mark.parametrize(
    ("X", "y", "match"),
    [
        (np.ones((10, 2)), np.ones(9), "inconsistent numbers of samples"),
        (np.ones((10, 2)), np.r_[np.ones(9), np.nan], "NaN"),
        (np.r_[np.ones((9, 2)), [[np.inf, 1]]], np.ones(10), "infinity"),
        (np.ones(10), np.ones(10), "2D array"),
    ],
)
def test_bad_data_raises(X, y, match):
    with pytest.raises(ValueError, match=match):
        tiny(DenseRegressor).fit(X, y)


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"hidden_layer_sizes": (16, 0)}, "hidden_layer_sizes"),
        ({"learning_rate": -1.0}, "learning_rate"),
        ({"batch_size": 0}, "batch_size"),
        ({"lr_schedule": "linear"}, "lr_schedule"),
        ({"early_stopping": True, "validation_fraction": 0.01}, "validation"),
    ],
)
def test_bad_parameters_raise(params, match):
    X, y = smooth_data(20)
    with pytest.raises(ValueError, match=match):
        tiny(DenseRegressor).set_params(**params).fit(X, y)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_unavailable_device_raises():
    X, y = smooth_data(20)
    with pytest.raises(ValueError, match="CUDA"):
        tiny(DenseRegressor, device="cuda").fit(X, y)


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_predict_checks_the_number_of_features(cls):
    X, y = smooth_data(20)
    reg = tiny(cls, max_iter=1).fit(X, y)
    with pytest.raises(ValueError, match="features"):
        reg.predict(np.ones((5, 3)))


def test_residual_blocks_start_near_the_identity():
    reg = ResidualRegressor(8, n_blocks=2, layer_scale=0.0)
    net = reg._build_module(3, 2)
    x = torch.randn(5, 3)
    # gamma = 0: every block passes its input through unchanged.
    torch.testing.assert_close(net(x), net.output(net.input(x)))
    assert [b.norm.weight for b in net.blocks] == [None, None]  # no affine
    gamma = ResidualRegressor(8)._build_module(3, 2).blocks[0].gamma
    torch.testing.assert_close(gamma.detach(), torch.full((8,), 1e-6))


def test_verbose_reports_progress_and_silent_prints_nothing(capsys):
    X, y = smooth_data(40)
    tiny(DenseRegressor, max_iter=3).fit(X, y)
    assert capsys.readouterr() == ("", "")
    tiny(DenseRegressor, max_iter=30, eval_every=10, verbose=1).fit(X, y)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 3 and all("left" in line for line in lines)
    assert lines[-1].startswith("DenseRegressor: 30/30 step")
    assert "loss" in lines[-1]


def test_no_warning_when_training_converges():
    X, y = smooth_data(40)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tiny(DenseRegressor, max_iter=500, tol=10.0, n_iter_no_change=1).fit(X, y)
