"""The one training loop (skdiffusion.engine) and what every torch estimator
inherits from it: the budget's unit, early stopping, divergence, interrupts,
and a failed fit that changes nothing."""

import copy
import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

from skdiffusion import DenseRegressor, DiffusionFeaturizer, ResidualRegressor
from skdiffusion.engine import TrainingDivergedError, learning_rate_at, train

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture(autouse=True, scope="module")
def _one_thread(one_torch_thread):
    """torch on one thread for this module (the fixture is in conftest)."""


def linear_problem(n=64, seed=0):
    generator = torch.Generator().manual_seed(seed)
    X = torch.randn(n, 2, generator=generator)
    y = X @ torch.tensor([[1.0], [-2.0]])
    module = torch.nn.Linear(2, 1)

    def batch_loss(rows):
        x, target = (X, y) if rows is None else (X[rows], y[rows])
        return torch.nn.functional.mse_loss(module(x), target)

    return module, batch_loss, n


def run(module, batch_loss, n, **options):
    settings = {"max_iter": 10, "batch_size": 16, "learning_rate": 1e-2}
    return train(module, batch_loss, n, **{**settings, **options})


# --- the loop ---------------------------------------------------------------


def test_max_iter_counts_optimiser_steps():
    history = run(*linear_problem(), max_iter=7, eval_every=3)
    assert history.n_iter == 7
    assert len(history.loss_curve) == 3  # after steps 3, 6 and the last, 7


def test_n_iter_no_change_none_never_stops_early():
    history = run(*linear_problem(), max_iter=12, eval_every=2, tol=1e9)
    assert history.n_iter == 12 and not history.stopped_early
    history = run(
        *linear_problem(), max_iter=12, eval_every=2, tol=1e9, n_iter_no_change=2
    )
    # the first evaluation sets the bar, the next two do not beat it by tol
    assert history.n_iter == 6 and history.stopped_early


def test_validation_keeps_the_weights_of_the_best_evaluation():
    module, batch_loss, n = linear_problem()
    scores, weights = iter([1.0, 3.0, 2.0, 0.0]), []
    run(
        module,
        batch_loss,
        n,
        max_iter=8,
        eval_every=2,
        validation_score=lambda: next(scores),
        callback=lambda info: weights.append(module.weight.detach().clone()),
    )
    torch.testing.assert_close(module.weight.detach(), weights[1], rtol=0, atol=0)


def test_divergence_after_the_last_step_is_caught():
    # one step at a huge rate: the loss of that step was fine, the weights not
    with pytest.raises(TrainingDivergedError, match="lower learning rate"):
        run(*linear_problem(), max_iter=1, learning_rate=1e12)


def test_non_finite_loss_raises():
    module, _, n = linear_problem()

    def nan_loss(rows):
        return module.weight.sum() * float("nan")

    with pytest.raises(TrainingDivergedError, match="diverged"):
        run(module, nan_loss, n)


def test_interrupt_keeps_the_steps_applied():
    def interrupt(info):
        if info["iter"] == 6:
            raise KeyboardInterrupt

    history = run(*linear_problem(), max_iter=20, eval_every=3, callback=interrupt)
    assert history.interrupted and history.n_iter == 6
    assert len(history.loss_curve) == 2


def test_the_optimiser_state_given_is_not_changed():
    module, batch_loss, n = linear_problem()
    first = run(module, batch_loss, n, max_iter=3)
    state = first.optimizer_state
    before = copy.deepcopy(state)
    run(module, batch_loss, n, max_iter=3, optimizer_state=state)
    for key, values in before["state"].items():
        for name, value in values.items():
            assert torch.equal(state["state"][key][name], value)


def test_continuing_a_run_matches_one_longer_run():
    # 64 rows in batches of 16: each 4-step call is one whole pass
    once, loss_once, n = linear_problem()
    twice, loss_twice, _ = linear_problem()
    twice.load_state_dict(once.state_dict())
    run(once, loss_once, n, max_iter=8, generator=torch.Generator().manual_seed(1))
    generator = torch.Generator().manual_seed(1)
    history = run(twice, loss_twice, n, max_iter=4, generator=generator)
    state = history.optimizer_state
    run(twice, loss_twice, n, max_iter=4, generator=generator, optimizer_state=state)
    torch.testing.assert_close(once.weight, twice.weight)


def test_learning_rate_warmup_then_cosine():
    rate = {"learning_rate": 1.0, "max_iter": 110, "warmup_iter": 10}
    assert learning_rate_at(0, **rate) == pytest.approx(0.1)
    assert learning_rate_at(60, lr_schedule="cosine", **rate) == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("option", "value"),
    [("max_iter", -1), ("batch_size", 0), ("eval_every", True),
     ("n_iter_no_change", 0), ("learning_rate", 0.0), ("lr_schedule", "step")],
)
def test_bad_options_are_named(option, value):
    with pytest.raises(ValueError, match=option if option != "lr_schedule" else "step"):
        run(*linear_problem(), **{option: value})


# --- what every torch estimator inherits --------------------------------------

X = np.random.default_rng(0).normal(size=(96, 3))
Y = np.sin(X[:, :2])


def tiny(cls, **params):
    shape = {
        DiffusionFeaturizer: {"n_hidden": 8, "n_blocks": 1, "time_embedding_dim": 8,
                              "feature_times": (0, 100), "mixed_precision": False,
                              "warmup_iter": 0},
        DenseRegressor: {"hidden_layer_sizes": (8,)},
        ResidualRegressor: {"n_hidden": 8, "n_blocks": 1},
    }[cls]
    return cls(**shape, **{"batch_size": 16, "random_state": 0, **params})


def fit(estimator, X_=X):
    return estimator.fit(X_) if isinstance(estimator, DiffusionFeaturizer) else (
        estimator.fit(X_, Y))


def output(estimator, X_=X):
    if isinstance(estimator, DiffusionFeaturizer):
        return estimator.transform(X_)
    return estimator.predict(X_)


ESTIMATORS = [DiffusionFeaturizer, DenseRegressor, ResidualRegressor]


@pytest.fixture
def adam_steps(monkeypatch):
    steps, step = [], torch.optim.Adam.step

    def counting(self, *args, **kwargs):
        steps.append(1)
        return step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "step", counting)
    return steps


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_max_iter_means_optimiser_steps_in_every_estimator(cls, adam_steps):
    # 96 rows in batches of 16: 7 steps are 7 batches, not 7 epochs
    estimator = fit(tiny(cls, max_iter=7, eval_every=100))
    assert estimator.n_iter_ == 7 and len(adam_steps) == 7
    assert len(estimator.loss_curve_) == 1


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_early_stopping_is_off_with_none_in_every_estimator(cls):
    estimator = fit(tiny(cls, max_iter=30, eval_every=2, tol=1e9,
                         n_iter_no_change=None))
    assert estimator.n_iter_ == 30
    estimator = fit(tiny(cls, max_iter=30, eval_every=2, tol=1e9,
                         n_iter_no_change=2))
    assert estimator.n_iter_ == 6


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_one_step_at_a_huge_rate_raises_and_leaves_it_unfitted(cls):
    estimator = tiny(cls, max_iter=1, learning_rate=1e12)
    with pytest.raises(TrainingDivergedError):
        fit(estimator)
    with pytest.raises(NotFittedError):
        check_is_fitted(estimator)


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_a_failed_warm_fit_leaves_weights_and_optimiser_state(cls):
    estimator = fit(tiny(cls, max_iter=3, warm_start=True, learning_rate=1e-2))
    spare = pickle.loads(pickle.dumps(estimator))
    before = output(estimator)
    state = copy.deepcopy(estimator._optimizer_state)
    with pytest.raises(TrainingDivergedError):
        fit(estimator.set_params(learning_rate=1e12))
    np.testing.assert_array_equal(output(estimator), before)
    for key, values in state["state"].items():
        for name, value in values.items():
            assert torch.equal(estimator._optimizer_state["state"][key][name], value)
    # and the next warm fit is the one the estimator would have made anyway
    fit(estimator.set_params(learning_rate=1e-2))
    fit(spare)
    np.testing.assert_array_equal(output(estimator), output(spare))


@pytest.mark.parametrize("cls", ESTIMATORS)
@pytest.mark.parametrize("failure", ["nan", "columns", "width_and_nan"])
def test_a_failed_refit_leaves_outputs_bit_identical(cls, failure):
    columns = ["a", "b", "c"]
    estimator = fit(tiny(cls, max_iter=3), pd.DataFrame(X, columns=columns))
    before = output(estimator, pd.DataFrame(X, columns=columns))
    bad = X.copy()
    bad[5, 1] = np.nan
    if failure == "columns":
        bad = pd.DataFrame(bad, columns=["x", "y", "z"])
    elif failure == "width_and_nan":
        bad = np.column_stack([bad, bad[:, 0]])
    with pytest.raises(ValueError):
        fit(estimator, bad)
    assert estimator.n_features_in_ == 3
    assert list(estimator.feature_names_in_) == columns
    np.testing.assert_array_equal(
        output(estimator, pd.DataFrame(X, columns=columns)), before
    )


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_interrupted_fit_keeps_the_steps_applied(cls, monkeypatch):
    step, calls = torch.optim.Adam.step, []

    def interrupt_fifth(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 5:
            raise KeyboardInterrupt
        return step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "step", interrupt_fifth)
    with pytest.warns(UserWarning, match="interrupted after 4 steps"):
        estimator = fit(tiny(cls, max_iter=50))
    assert estimator.n_iter_ == 4
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.isfinite(output(estimator)).all()
