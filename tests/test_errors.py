"""Bad input and faults: each case reported by an adversarial user, as a test.

Every case either raises a clear error naming the argument, or works where
the input is valid. The cases of ``skdiffusion.assimilation`` are tested
with it.
"""

import copy
import glob
import io
import pickle
import warnings

import joblib
import numpy as np
import pytest
import torch
from numpy.testing import assert_array_equal
from sklearn.base import clone
from sklearn.linear_model import Ridge
from sklearn.preprocessing import FunctionTransformer

from skdiffusion import (
    ConvRegressor,
    DenseRegressor,
    DiffusionFeaturizer,
    FineTunedRegressor,
    PeriodicPatches,
    ResidualRegressor,
    RFFFeaturizer,
    ShallowHeadRegressor,
    SiteWiseRegressor,
    StreamingRidge,
    StreamingRidgeCV,
    SurrogateForecaster,
    datasets,
    diffusion,
    metrics,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY_NETWORK = {"n_hidden": 16, "n_blocks": 1, "time_embedding_dim": 16}
TINY_TRAINING = {"max_iter": 5, "batch_size": 64, "device": "cpu", "random_state": 0}


def tiny_featurizer(**params):
    return DiffusionFeaturizer(**{
        **TINY_NETWORK, **TINY_TRAINING, "n_diffusion_steps": 50,
        "feature_times": (0, 10), **params,
    })


@pytest.fixture(scope="module")
def data():
    lorenz = datasets.make_lorenz63(1, 300, burn_in=500, random_state=0)
    return lorenz.X, lorenz.y


@pytest.fixture(scope="module")
def featurizer(data):
    return tiny_featurizer().fit(data[0])


@pytest.fixture
def fresh_featurizer(featurizer):
    """The module's featurizer; parameters a test changes are put back."""
    params = featurizer.get_params()
    yield featurizer
    featurizer.set_params(**params)


# --- silent NaN or inf --------------------------------------------------------


def test_featurizer_refuses_a_row_far_beyond_the_training_units(featurizer, data):
    X = data[0]
    with pytest.raises(ValueError, match="X has a value 2.*e\\+20 standard dev"):
        featurizer.transform([[1e20, 0, 0]])
    # the same row among ordinary rows: the same answer
    with pytest.raises(ValueError, match="X has a value"):
        featurizer.transform(np.r_[X[:5], [[1e20, 0, 0]]])


def test_featurizer_score_is_finite(featurizer, data):
    assert np.isfinite(featurizer.score(data[0]))


def test_sample_ensemble_refuses_a_centre_far_beyond_the_training_units(featurizer):
    with pytest.raises(ValueError, match="X has a value"):
        featurizer.sample_ensemble([[1e30, 0, 0]], 13, 4)


def test_residual_regressor_refuses_a_row_far_beyond_the_training_units(data):
    X, y = data
    regressor = ResidualRegressor(16, n_blocks=1, **TINY_TRAINING).fit(X, y)
    with pytest.raises(ValueError, match="X has a value"):
        regressor.predict([[1e20, 0, 0]])


def test_rff_refuses_float32_inputs_whose_phases_overflow(data):
    X = (data[0] * 1e38).astype(np.float32)
    with pytest.raises(ValueError, match="X has values up to .* overflow float32"):
        RFFFeaturizer(64, random_state=0).fit_transform(X)
    features = RFFFeaturizer(64, random_state=0).fit_transform(data[0] * 1e3)
    assert np.isfinite(features).all()  # large but harmless: no error


def test_rk4_says_the_integration_blew_up_and_with_which_step():
    with pytest.raises(ValueError, match="blew up.*step 5 of 10.*dt=0.5"):
        datasets.rk4(np.square, [1.0], 0.5, 10)
    with pytest.raises(ValueError, match="lorenz63.*NaN or inf.*1e\\+200"):
        datasets.rk4(datasets.lorenz63, np.full(3, 1e200), 0.01, 10)
    with pytest.raises(ValueError, match="blew up.*dt=0.5"):
        datasets.rk4(np.square, [1.0], 0.5, 10, return_trajectory=False)


@pytest.mark.parametrize(
    "make", [lambda: tiny_featurizer(max_iter=1), lambda: DenseRegressor(max_iter=1)],
    ids=["DiffusionFeaturizer", "DenseRegressor"],
)
def test_fit_refuses_data_whose_spread_overflows(make, data):
    X, y = data
    with (
        pytest.raises(ValueError, match="X is too large to standardise"),
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore", RuntimeWarning)  # numpy's own overflow
        make().fit(X * 1e160, y)


# --- accepted nonsense ----------------------------------------------------------


def estimators(featurizer):
    torch_training = {**TINY_TRAINING, "max_iter": 2}
    return {
        "RFFFeaturizer": RFFFeaturizer(16, random_state=0),
        "DiffusionFeaturizer": tiny_featurizer(max_iter=1),
        "StreamingRidge": StreamingRidge(),
        "StreamingRidgeCV": StreamingRidgeCV(random_state=0),
        "DenseRegressor": DenseRegressor((8,), **torch_training),
        "ResidualRegressor": ResidualRegressor(8, n_blocks=1, **torch_training),
        "ConvRegressor": ConvRegressor(
            8, n_blocks=1, kernel_size=3, **torch_training
        ),
        "FineTunedRegressor": FineTunedRegressor(featurizer, **torch_training),
        "ShallowHeadRegressor": ShallowHeadRegressor(
            featurizer, hidden_layer_sizes=(8,), **torch_training
        ),
        "SurrogateForecaster": SurrogateForecaster(Ridge()),
        "SiteWiseRegressor": SiteWiseRegressor(Ridge()),
        "PeriodicPatches": PeriodicPatches(1),
    }


ESTIMATOR_NAMES = [
    "RFFFeaturizer", "DiffusionFeaturizer", "StreamingRidge", "StreamingRidgeCV",
    "DenseRegressor", "ResidualRegressor", "ConvRegressor", "FineTunedRegressor",
    "ShallowHeadRegressor", "SurrogateForecaster", "SiteWiseRegressor",
    "PeriodicPatches",
]


@pytest.mark.parametrize("name", ESTIMATOR_NAMES)
def test_numbers_written_as_text_are_refused_by_fit_and_predict(name, featurizer, data):
    X, y = data
    estimator = estimators(featurizer)[name]
    with pytest.raises(ValueError, match="X must be an array of numbers.*text"):
        estimator.fit(X.astype(str), y)
    if not hasattr(estimator, "predict") or name == "PeriodicPatches":
        estimator.fit(X, y)
        with pytest.raises(ValueError, match="X must be an array of numbers"):
            estimator.transform(X.astype(str))
        return
    with pytest.raises(ValueError, match="y must be an array of numbers"):
        estimator.fit(X, y.astype(str))
    estimator.fit(X, y)
    with pytest.raises(ValueError, match="X must be an array of numbers"):
        estimator.predict(X.astype(str))


def test_text_in_a_dataframe_column_is_refused_naming_the_column(data):
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(data[0], columns=list("abc"))
    frame["b"] = frame["b"].astype(str)
    with pytest.raises(ValueError, match="column 'b' holds text"):
        StreamingRidge().fit(frame, data[1])


def test_object_arrays_of_numbers_still_work(data):
    X, y = data
    model = StreamingRidge().fit(X.astype(object), y)
    assert_array_equal(model.predict(X.astype(object)), model.predict(X))


@pytest.mark.parametrize(
    "name, value", [("n_diffusion_steps", 500), ("schedule", "linear"),
                    ("parameterization", "noise")]
)
def test_parameters_changed_after_fit_are_refused(fresh_featurizer, name, value):
    fresh_featurizer.set_params(**{name: value})
    with pytest.raises(ValueError, match=f"{name}=.*changed after fit"):
        fresh_featurizer.sample(3)


def test_warm_start_after_changing_the_diffusion_steps_is_refused(data):
    model = tiny_featurizer(max_iter=1, warm_start=True).fit(data[0])
    model.set_params(n_diffusion_steps=60)
    with pytest.raises(ValueError, match="n_diffusion_steps=60"):
        model.fit(data[0])


def test_bools_are_refused_where_integers_are_expected(featurizer, data):
    with pytest.raises(ValueError, match="'tau' parameter.*not a bool. Got True"):
        featurizer.sample_ensemble(data[0][:2], True, 3)
    with pytest.raises(ValueError, match="'max_iter' parameter.*not a bool"):
        tiny_featurizer(max_iter=True).fit(data[0])
    with pytest.raises(ValueError, match="'n_components' parameter.*not a bool"):
        RFFFeaturizer(True).fit(data[0])
    with pytest.raises(ValueError, match="'n_steps' parameter.*not a bool"):
        datasets.make_lorenz63(1, True)
    with pytest.raises(ValueError, match="'alpha' parameter.*not a bool"):
        StreamingRidge(alpha=False).fit(*data)
    # parameters meant for booleans still take them
    StreamingRidge(fit_intercept=False, verbose=False).fit(*data)


def test_nested_alphas_are_refused():
    with pytest.raises(ValueError, match="alphas must be a non-empty list"):
        StreamingRidgeCV(alphas=[[1e-3, 1.0]]).fit(np.ones((10, 2)), np.ones(10))


def test_lorenz96_refuses_a_ring_of_fewer_than_four_sites():
    with pytest.raises(ValueError, match="x must have shape .*n_dim >= 4.*\\(2,\\)"):
        datasets.lorenz96(np.ones(2))


def test_cosine_schedule_refuses_nan_offset():
    with pytest.raises(ValueError, match="s must be a finite number >= 0, got nan"):
        diffusion.cosine_schedule(10, s=np.nan)


def test_denoiser_refuses_zero_width():
    with pytest.raises(ValueError, match="n_hidden must be an integer >= 1, got 0"):
        diffusion.Denoiser(3, n_hidden=0)


def test_nrmse_scorer_checks_std_when_made():
    with pytest.raises(ValueError, match="std"):
        metrics.make_nrmse_scorer(std="a")
    with pytest.raises(ValueError, match="std must be positive"):
        metrics.make_nrmse_scorer(std=[1.0, -1.0])


# --- an estimator changed by a failed call --------------------------------------


def test_failed_refit_of_the_forecaster_keeps_it_usable(data):
    X, y = data
    model = SurrogateForecaster(Ridge()).fit(X, X + y)
    before = model.predict(X)
    with pytest.raises(ValueError, match="y has 3 columns but X only 2"):
        model.fit(X[:, :2], X + y)
    assert_array_equal(model.predict(X), before)


@pytest.mark.parametrize(
    "make", [lambda: SurrogateForecaster(Ridge()), StreamingRidge, StreamingRidgeCV,
             lambda: RFFFeaturizer(16, random_state=0)],
    ids=["SurrogateForecaster", "StreamingRidge", "StreamingRidgeCV", "RFFFeaturizer"],
)
def test_failed_refit_with_other_column_names_keeps_the_names(make, data):
    pd = pytest.importorskip("pandas")
    X, y = data
    model = make().fit(pd.DataFrame(X, columns=list("abc")), X + y)
    output = model.predict if hasattr(model, "predict") else model.transform
    before = output(X)
    bad = pd.DataFrame(np.c_[X[:, :2], np.full(len(X), np.nan)], columns=list("xyz"))
    with pytest.raises(ValueError, match="NaN"):
        model.fit(bad, X + y)
    assert_array_equal(model.feature_names_in_, list("abc"))
    assert_array_equal(output(X), before)


# --- misleading or deep messages ------------------------------------------------


@pytest.mark.parametrize("cls", [DenseRegressor, ResidualRegressor])
def test_huge_but_consistent_units_train_without_complaint(cls, data):
    X, y = data
    model = cls(8, **TINY_TRAINING) if cls is ResidualRegressor else cls(
        (8,), **TINY_TRAINING
    )
    prediction = model.fit(X * 1e30, y).predict(X * 1e30)
    assert prediction.shape == y.shape and np.isfinite(prediction).all()


def test_make_lorenz63_says_the_integration_blew_up_with_its_dt():
    with pytest.raises(ValueError, match="blew up.*dt=0.5") as error:
        datasets.make_lorenz63(2, 50, dt=0.5)
    assert "x0" not in str(error.value)


def test_ridges_name_overflowing_features_not_scipy(data):
    X, y = data
    for model in (StreamingRidge(), StreamingRidgeCV(random_state=0)):
        with pytest.raises(ValueError, match="normal equations are not finite"):
            model.fit(X * 1e200, y)
    nan_features = FunctionTransformer(lambda A: A / 0.0)
    with (
        pytest.raises(ValueError, match="normal equations are not finite"),
        np.errstate(divide="ignore", invalid="ignore"),
    ):
        StreamingRidge(transformer=nan_features).fit(X, y)


def test_shape_errors_name_the_argument(data):
    X = data[0]
    shape = "x must have shape \\(\\.\\.\\., 3\\)"
    with pytest.raises(ValueError, match=f"lorenz63: {shape}"):
        datasets.lorenz63(np.ones(4))
    with pytest.raises(ValueError, match="std must be a number or have shape"):
        metrics.nrmse(X, X, std=[1.0, 2.0])
    with pytest.raises(ValueError, match="bins must be an integer or have sha"):
        metrics.hellinger_distance(X, X, bins=[10, 10])


# --- wrong exception type -------------------------------------------------------


@pytest.mark.parametrize("device", ["meta", "mps"])
def test_unsupported_devices_are_refused_by_name(device, data):
    with pytest.raises(ValueError, match=f"device='{device}'"):
        DenseRegressor((8,), max_iter=1, device=device).fit(*data)


def test_a_network_width_changed_after_fit_is_named(fresh_featurizer, data):
    fresh_featurizer.set_params(n_hidden=32)
    with pytest.raises(ValueError, match="n_hidden=32 \\(fitted with 16\\)"):
        fresh_featurizer.transform(data[0])


def test_lorenz96_refuses_a_scalar():
    with pytest.raises(ValueError, match="lorenz96: x must .*got shape \\(\\)"):
        datasets.lorenz96(1.0)


def test_get_data_home_refuses_a_file(tmp_path):
    path = tmp_path / "a_file"
    path.write_text("")
    with pytest.raises(ValueError, match="data_home=.*a_file.* is not a folder"):
        datasets.get_data_home(path)
    with pytest.raises(ValueError, match="is not a folder"):
        datasets.get_data_home(path / "below")


def test_sampling_more_than_memory_says_how_much_it_would_need(featurizer, data):
    with pytest.raises(ValueError, match="n_samples=10000000000000 .* would need .*TB"):
        featurizer.sample(10**13)
    with pytest.raises(ValueError, match="n_members=1000000000000 .* would need"):
        featurizer.sample_ensemble(data[0][:2], 13, 10**12)
    # the low-level functions say so too, not torch's allocator
    network = diffusion.Denoiser(3, n_hidden=8, n_blocks=1, time_embedding_dim=8)
    schedule = diffusion.cosine_schedule(10)
    with pytest.raises(ValueError, match="n_samples=10000000000000 .* would need"):
        diffusion.generate(network, 10**13, 3, schedule, n_steps=2)
    states = torch.zeros(2, 3)
    with pytest.raises(ValueError, match="n_members=1000000000000 .* would need"):
        diffusion.ensemble(network, states, 5, 10**12, schedule, n_steps=2)


def test_cosine_schedule_takes_numpy_integers():
    schedule = diffusion.cosine_schedule(np.int64(10))
    assert schedule.n_steps == 10
    assert_array_equal(schedule.alpha_bar, diffusion.cosine_schedule(10).alpha_bar)
    with pytest.raises(ValueError, match="n_steps must be a positive integer"):
        diffusion.cosine_schedule(True)


# --- faults ---------------------------------------------------------------------


def test_a_diverged_warm_start_changes_nothing_not_even_the_optimiser(data):
    X, y = data
    model = DenseRegressor((8,), warm_start=True, **TINY_TRAINING).fit(X, y)
    state = pickle.dumps(model)
    model.set_params(learning_rate=1e10)
    with pytest.raises(ValueError, match="diverged"):
        model.fit(X, y)
    assert pickle.dumps(model.set_params(learning_rate=1e-3)) == state


def test_a_one_step_fit_that_diverges_raises(data):
    X, y = data
    with pytest.raises(ValueError, match="diverged"):
        DenseRegressor((8,), **{**TINY_TRAINING, "max_iter": 1},
                       learning_rate=1e12).fit(X * 1e3, y * 1e3)


def test_a_damaged_cache_file_is_regenerated_with_a_warning(tmp_path):
    make = dict(n_trajectories=1, n_steps=200, burn_in=10, random_state=0,
                cache=True, data_home=tmp_path)
    first = datasets.make_lorenz63(**make)
    [path] = glob.glob(str(tmp_path / "**" / "output.pkl"), recursive=True)
    with open(path, "rb") as file:
        damaged = bytearray(file.read())
    middle = len(damaged) // 2  # inside the array's bytes
    damaged[middle : middle + 8] = bytes(b ^ 0xFF for b in damaged[middle : middle + 8])
    with open(path, "wb") as file:
        file.write(damaged)
    with pytest.warns(RuntimeWarning, match="do not match their checksum"):
        again = datasets.make_lorenz63(**make)
    assert_array_equal(again.trajectories, first.trajectories)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the regenerated file is sound
        assert_array_equal(datasets.make_lorenz63(**make).X, first.X)


def torch_estimators(featurizer):
    training = {**TINY_TRAINING, "max_iter": 3}
    return {
        "DiffusionFeaturizer": tiny_featurizer(max_iter=3),
        "DenseRegressor": DenseRegressor((8,), **training),
        "ResidualRegressor": ResidualRegressor(8, n_blocks=1, **training),
        "ConvRegressor": ConvRegressor(8, n_blocks=1, kernel_size=3, **training),
        "FineTunedRegressor": FineTunedRegressor(featurizer, **training),
        "ShallowHeadRegressor": ShallowHeadRegressor(
            featurizer, hidden_layer_sizes=(8,), **training
        ),
    }


@pytest.mark.parametrize(
    "name", ["DiffusionFeaturizer", "DenseRegressor", "ResidualRegressor",
             "ConvRegressor", "FineTunedRegressor"],
)
def test_pickles_of_a_fitted_torch_estimator_are_byte_identical(name, featurizer, data):
    X, y = data
    model = torch_estimators(featurizer)[name].fit(X, y)
    model.transform(X) if name == "DiffusionFeaturizer" else model.predict(X)
    dumped = pickle.dumps(model)
    assert pickle.dumps(model) == dumped
    assert pickle.dumps(copy.deepcopy(model)) == dumped
    assert pickle.dumps(pickle.loads(dumped)) == dumped
    # the same seed fits the same bytes (a clone would unfit the featurizer
    # that FineTunedRegressor starts from, so the estimator is built again)
    assert pickle.dumps(torch_estimators(featurizer)[name].fit(X, y)) == dumped
    dumps = []
    for _ in range(2):
        buffer = io.BytesIO()
        joblib.dump(model, buffer)
        dumps.append(buffer.getvalue())
    assert dumps[0] == dumps[1]


def test_pickles_of_a_fitted_shallow_head_are_byte_identical_across_dumps(
    featurizer, data
):
    # Repeated dumps and a same-seed refit give the same bytes; a deepcopy or
    # a loaded copy does not yet (its module pickles its strings otherwise).
    X, y = data
    model = torch_estimators(featurizer)["ShallowHeadRegressor"].fit(X, y)
    dumped = pickle.dumps(model)
    assert pickle.dumps(model) == dumped
    refit = torch_estimators(featurizer)["ShallowHeadRegressor"].fit(X, y)
    assert pickle.dumps(refit) == dumped
    assert_array_equal(pickle.loads(dumped).predict(X), model.predict(X))


def integer_parameters(constraints):
    """Names of the parameters whose constraints include an integer interval."""
    from numbers import Integral

    from sklearn.utils._param_validation import Interval

    return [
        name for name, allowed in constraints.items()
        if not isinstance(allowed, str)
        and any(isinstance(c, Interval) and c.type is Integral for c in allowed)
    ]


@pytest.mark.parametrize("name", ESTIMATOR_NAMES)
def test_every_integer_parameter_of_every_estimator_refuses_bools(
    name, featurizer, data
):
    estimator = estimators(featurizer)[name]
    names = integer_parameters(estimator._parameter_constraints)
    for param in names:
        model = clone(estimator).set_params(**{param: True})
        with pytest.raises(ValueError, match=f"'{param}' parameter.*not a bool"):
            model.fit(*data)


@pytest.mark.parametrize(
    "function",
    [datasets.make_lorenz63, datasets.make_lorenz96, datasets.make_trajectories,
     datasets.rk4, datasets.pairs_from_trajectories, metrics.make_vpt_scorer,
     metrics.make_rollout_scorer, metrics.hellinger_distance,
     metrics.nearest_neighbour_distances],
    ids=lambda function: function.__name__,
)
def test_every_integer_argument_of_the_functions_refuses_bools(function):
    names = integer_parameters(function._skl_parameter_constraints)
    assert names or function is metrics.nearest_neighbour_distances
    for param in names:
        with pytest.raises(ValueError, match=f"'{param}' parameter.*not a bool"):
            function(**{param: True})  # refused before anything else is looked at


def test_an_interrupted_fit_counts_the_steps_applied(data, interrupt_adam_after):
    interrupt_adam_after(3)
    with pytest.warns(UserWarning, match="interrupted after 3 steps"):
        model = DenseRegressor((8,), **{**TINY_TRAINING, "max_iter": 10}).fit(*data)
    assert model.n_iter_ == 3
