"""Property-based tests: random input thrown at every public entry point.

Shapes, dtypes (text and complex included), magnitudes from 1e-300 to
1e300, NaN and inf at random places, and odd parameter values (bools,
NaN, negative, strings, numpy integers). Every call must either raise a
ValueError or TypeError whose message names the argument, or return
finite values of the documented shape and dtype; a call that fails must
leave a fitted estimator's predictions bit-identical. The assimilation
module is tested with it. The number of cases per entry point is printed
at the end of the test session.
"""

import copy
import warnings

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numpy.testing import assert_array_equal
from sklearn.base import clone
from sklearn.linear_model import Ridge

from skdiffusion import (
    ConvRegressor,
    DenseRegressor,
    DiffusionFeaturizer,
    FineTunedRegressor,
    PeriodicPatches,
    ResidualRegressor,
    RFFFeaturizer,
    SiteWiseRegressor,
    StreamingRidge,
    StreamingRidgeCV,
    SurrogateForecaster,
    datasets,
    diffusion,
    metrics,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SETTINGS = settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
FEW = settings(SETTINGS, max_examples=10)

TRAINING = {"max_iter": 2, "batch_size": 32, "device": "cpu", "random_state": 0}
FEATURIZER = {
    "n_hidden": 8, "n_blocks": 1, "time_embedding_dim": 8,
    "n_diffusion_steps": 20, "feature_times": (0, 5), **TRAINING,
}


def make_estimators():
    featurizer = DiffusionFeaturizer(**FEATURIZER)
    return {
        "RFFFeaturizer": RFFFeaturizer(16, random_state=0),
        "DiffusionFeaturizer": featurizer,
        "StreamingRidge": StreamingRidge(),
        "StreamingRidgeCV": StreamingRidgeCV(alphas=[1e-6, 1.0], random_state=0),
        "DenseRegressor": DenseRegressor((8,), **TRAINING),
        "ResidualRegressor": ResidualRegressor(8, n_blocks=1, **TRAINING),
        "ConvRegressor": ConvRegressor(4, n_blocks=1, kernel_size=3, **TRAINING),
        "FineTunedRegressor": FineTunedRegressor(
            DiffusionFeaturizer(**FEATURIZER), **TRAINING
        ),
        "SurrogateForecaster": SurrogateForecaster(Ridge()),
        "SiteWiseRegressor": SiteWiseRegressor(Ridge()),
        "PeriodicPatches": PeriodicPatches(1),
    }


# estimators whose input is a ring of sites of any size
RINGS = {"ConvRegressor", "SiteWiseRegressor", "PeriodicPatches"}
CHEAP = ["RFFFeaturizer", "StreamingRidge", "StreamingRidgeCV", "SurrogateForecaster",
         "SiteWiseRegressor", "PeriodicPatches"]
TORCH = ["DiffusionFeaturizer", "DenseRegressor", "ResidualRegressor",
         "ConvRegressor", "FineTunedRegressor"]


@pytest.fixture(scope="module")
def data():
    lorenz = datasets.make_lorenz63(1, 120, burn_in=200, random_state=0)
    return lorenz.X, lorenz.X + lorenz.y


@pytest.fixture(scope="module")
def fitted(data):
    """Each estimator fitted once, with its reference output on the data."""
    X, y = data
    models = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, estimator in make_estimators().items():
            estimator.fit(X, y)
            models[name] = (estimator, output(estimator, X))
    return models


def output(estimator, X):
    method = estimator.predict if hasattr(estimator, "predict") else estimator.transform
    return method(X)


# --- random arrays ----------------------------------------------------------------

MAGNITUDES = [1e-300, 1e-5, 1.0, 1e3, 1e10, 1e30, 1e100, 1e300]
DTYPES = ["float64", "float64", "float32", "int64", "bool", "object", "str", "complex"]


@st.composite
def arrays(draw, width, ndim=2):
    """Random arrays of about ``width`` columns, with faults.

    Mostly ``ndim`` dimensions and ``width`` columns, else others; values of
    any magnitude, sometimes a NaN or inf at a random place, in any dtype.
    """
    shape_kind = draw(st.sampled_from(["right"] * 4 + ["width", "ndim", "empty"]))
    n_rows = draw(st.integers(1, 5))
    n_columns = width
    if shape_kind == "width":
        n_columns = draw(st.sampled_from([1, width + 1, width + 3]))
    shape = (n_rows, n_columns) if ndim == 2 else (n_rows, 3, n_columns)
    if shape_kind == "ndim":
        shape = draw(st.sampled_from([(), (n_columns,), (n_rows, 2, n_columns)]))
    if shape_kind == "empty":
        shape = draw(st.sampled_from([(0, n_columns), (n_rows, 0)]))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    values = rng.standard_normal(shape) * draw(st.sampled_from(MAGNITUDES))
    fault = draw(st.sampled_from([None, None, np.nan, np.inf, -np.inf]))
    if fault is not None and values.size:
        values.flat[rng.integers(values.size)] = fault
    return as_dtype(values, draw(st.sampled_from(DTYPES)))


def as_dtype(values, dtype):
    with np.errstate(over="ignore", invalid="ignore"):
        if dtype == "int64":
            finite = np.isfinite(values).all() and np.abs(values).max(initial=0) < 1e18
            return values.astype(np.int64) if finite else values
        if dtype == "complex":
            return values + 1j
        if dtype == "str":
            return values.astype(str)
        return values.astype(dtype)


def check_outcome(call, names, shape=None, allow_nan=False):
    """Run `call`: a clear error naming one of `names`, or finite output.

    Returns "error" or "ok". With `allow_nan`, NaN (a documented marker)
    may appear in the output.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = call()
    except (ValueError, TypeError) as error:
        message = str(error)
        assert any(name in message for name in names), (
            f"{type(error).__name__} names none of {names}: {message}"
        )
        return "error"
    if hasattr(result, "get_params"):  # fit returned the estimator
        return "ok"
    result = np.asarray(result)
    assert result.dtype.kind == "f", result.dtype
    if shape is not None:
        assert result.shape == shape, (result.shape, shape)
    values = result[~np.isnan(result)] if allow_nan else result
    assert np.isfinite(values).all(), result
    return "ok"


def width_of(X):
    return np.shape(X)[-1] if np.ndim(X) >= 1 else 0


# --- fitted estimators: predict, transform and friends --------------------------


def expected_shape(name, estimator, X):
    """Documented output shape for a valid X, or None where it depends."""
    if np.ndim(X) != 2:
        return None
    n, width = np.shape(X)
    if name == "RFFFeaturizer":
        return (n, estimator.n_components)
    if name == "DiffusionFeaturizer":
        return (n, estimator._width() * len(estimator._times()))
    if name == "PeriodicPatches":
        return (n, (2 * estimator.radius + 1) * width)
    return (n, width) if name in RINGS else (n, 3)


@pytest.mark.parametrize("name", CHEAP + TORCH)
@SETTINGS
@given(draw=st.data())
def test_predict_or_transform_is_finite_or_refuses_clearly(
    name, fitted, data, property_cases, draw
):
    estimator, before = fitted[name]
    X = draw.draw(arrays(3))
    method = "predict" if hasattr(estimator, "predict") else "transform"
    shape = expected_shape(name, estimator, X)
    check_outcome(lambda: output(estimator, X), ["X"], shape)
    assert_array_equal(output(estimator, data[0]), before)
    property_cases[f"{name}.{method}"] += 1


@SETTINGS
@given(draw=st.data())
def test_featurizer_sampling_is_finite_or_refuses_clearly(
    fitted, data, property_cases, draw
):
    featurizer, before = fitted["DiffusionFeaturizer"]
    X = draw.draw(arrays(3))
    tau = draw.draw(st.sampled_from([0, 5, 20, 21, -1, True, 2.5, np.int64(3)]))
    n_members = draw.draw(st.sampled_from([1, 2, 0, True, np.int64(2)]))
    shape = None if np.ndim(X) != 2 else (len(X), n_members, 3)
    check_outcome(
        lambda: featurizer.sample_ensemble(X, tau, n_members, random_state=0),
        ["X", "tau", "n_members"], shape,
    )
    check_outcome(lambda: featurizer.score(X), ["X"])
    n_samples = draw.draw(st.sampled_from([1, 3, 0, -2, True, np.int64(2), 2.0]))
    check_outcome(
        lambda: featurizer.sample(n_samples, n_steps=2, random_state=0),
        ["n_samples"], (n_samples, 3) if isinstance(n_samples, int) else None,
    )
    assert_array_equal(featurizer.transform(data[0]), before)
    property_cases["DiffusionFeaturizer.sample_ensemble/score/sample"] += 1


@SETTINGS
@given(draw=st.data())
def test_forecast_is_finite_marks_blow_ups_or_refuses_clearly(
    fitted, data, property_cases, draw
):
    forecaster, before = fitted["SurrogateForecaster"]
    X0 = draw.draw(arrays(3))
    n_steps = draw.draw(st.sampled_from([1, 3, 0, True, np.int64(2), 1.5]))
    shape = None if np.ndim(X0) != 2 else (len(X0), n_steps + 1, 3)
    # rollouts that blew up are NaN from then on: the documented marker
    check_outcome(lambda: forecaster.forecast(X0, n_steps), ["X", "n_steps"],
                  shape, allow_nan=True)
    assert_array_equal(forecaster.predict(data[0]), before)
    property_cases["SurrogateForecaster.forecast"] += 1


# --- fit: random data, and failed fits leave the fitted estimator as it was ------


def check_fit(name, fitted, data, X, y):
    estimator, before = fitted[name]
    model = copy.deepcopy(estimator)
    # e.g. "validation_fraction=0.1 of 1 samples leaves no row to fit"
    names = ["X", "y", *estimator.get_params(deep=False)]
    outcome = check_outcome(lambda: model.fit(X, y), names)
    if outcome == "error":
        assert_array_equal(output(model, data[0]), before)
    else:
        check_outcome(lambda: output(model, X), ["X"], expected_shape(name, model, X))


@pytest.mark.parametrize("name", CHEAP)
@SETTINGS
@given(draw=st.data())
def test_fit_on_random_data_works_or_refuses_and_changes_nothing(
    name, fitted, data, property_cases, draw
):
    X = draw.draw(arrays(3))
    n_rows = len(X) if np.ndim(X) else 1
    y = draw.draw(st.one_of(
        st.just(np.ones((n_rows, width_of(X) if name in RINGS else 3))),
        arrays(3),
    ))
    check_fit(name, fitted, data, X, y)
    property_cases[f"{name}.fit"] += 1


@pytest.mark.parametrize("name", TORCH)
@FEW
@given(draw=st.data())
def test_torch_fit_on_random_data_works_or_refuses_and_changes_nothing(
    name, fitted, data, property_cases, draw
):
    X = draw.draw(arrays(3))
    n_rows = len(X) if np.ndim(X) else 1
    y = np.ones((n_rows, width_of(X) if name in RINGS else 3))
    check_fit(name, fitted, data, X, y)
    property_cases[f"{name}.fit"] += 1


@pytest.mark.parametrize("name", ["StreamingRidge"])
@SETTINGS
@given(draw=st.data())
def test_partial_fit_works_or_refuses_and_changes_nothing(
    name, fitted, data, property_cases, draw
):
    estimator, _ = fitted[name]
    model = StreamingRidge().partial_fit(*data)
    before = model.predict(data[0])
    X = draw.draw(arrays(3))
    y = draw.draw(arrays(3))
    if check_outcome(lambda: model.partial_fit(X, y), ["X", "y"]) == "error":
        assert_array_equal(model.predict(data[0]), before)
    property_cases["StreamingRidge.partial_fit"] += 1


# --- odd parameter values ---------------------------------------------------------

ODD_VALUES = [True, False, -1, 0, 0.5, np.nan, np.inf, "a", None, np.int64(2), [1]]


@pytest.mark.parametrize("name", CHEAP + TORCH)
@FEW
@given(draw=st.data())
def test_odd_parameter_values_work_or_are_named(
    name, fitted, data, property_cases, draw
):
    estimator, _ = fitted[name]
    params = sorted(
        key for key, value in estimator.get_params(deep=False).items()
        if not hasattr(value, "fit") and key not in ("device", "verbose")
    )
    if not params:
        return
    param = draw.draw(st.sampled_from(params))
    value = draw.draw(st.sampled_from(ODD_VALUES))
    model = clone(estimator).set_params(**{param: value})
    X, y = data
    # a value that fits can still make X unusable; a learning rate can make
    # training diverge, which says so and which rate to lower
    names = [param, "X", "diverged"]
    if check_outcome(lambda: model.fit(X, y), names) == "ok":
        check_outcome(lambda: output(model, X), names, expected_shape(name, model, X))
    property_cases[f"{name}(param=odd)"] += 1


# --- functions ----------------------------------------------------------------------


@SETTINGS
@given(x=arrays(3), name=st.sampled_from(["lorenz63", "lorenz96"]))
def test_vector_fields_are_finite_or_refuse_clearly(x, name, property_cases):
    field = getattr(datasets, name)
    shape = np.shape(x) if np.ndim(x) >= 1 and width_of(x) >= 3 else None
    if name == "lorenz63" and width_of(x) != 3:
        shape = None
    check_outcome(lambda: field(x), ["x"], shape)
    property_cases[f"datasets.{name}"] += 1


@SETTINGS
@given(
    x0=arrays(3),
    dt=st.sampled_from([0.01, 0.5, -0.01, 0.0, np.nan, np.inf, True, "a", 2]),
    n_steps=st.sampled_from([0, 1, 5, -1, True, np.int64(3), 2.5]),
)
def test_rk4_is_finite_or_refuses_clearly(x0, dt, n_steps, property_cases):
    shape = None
    if np.ndim(x0) >= 1 and isinstance(n_steps, int | np.integer):
        shape = np.shape(x0)[:-1] + (int(n_steps) + 1, width_of(x0))
    check_outcome(lambda: datasets.rk4(datasets.lorenz63, x0, dt, n_steps),
                  ["x0", "x", "dt", "n_steps"], shape)
    property_cases["datasets.rk4"] += 1


@SETTINGS
@given(
    states=arrays(3, ndim=3),
    shift=st.sampled_from([0.0, [1.0, 2.0, 3.0], [1.0], np.nan, "a", True]),
    scale=st.sampled_from([1.0, [1.0, 2.0, 3.0], 0.0, -1.0, np.inf, [1.0, 2.0]]),
)
def test_normalize_states_is_finite_or_refuses_clearly(
    states, shift, scale, property_cases
):
    check_outcome(lambda: datasets.normalize_states(states, shift, scale),
                  ["states", "shift", "scale"], np.shape(states))
    property_cases["datasets.normalize_states"] += 1


@SETTINGS
@given(
    trajectories=arrays(3, ndim=3),
    lead_steps=st.sampled_from([1, 2, 0, True, np.int64(1)]),
)
def test_pairs_from_trajectories_are_finite_or_refuse_clearly(
    trajectories, lead_steps, property_cases
):
    def call():
        return datasets.pairs_from_trajectories(trajectories, lead_steps=lead_steps)[1]

    check_outcome(call, ["trajectories", "lead_steps"])
    property_cases["datasets.pairs_from_trajectories"] += 1


@FEW
@given(
    n_trajectories=st.sampled_from([1, 2, 0, True, np.int64(1)]),
    n_steps=st.sampled_from([3, 20, 1, True, -1]),
    dt=st.sampled_from([0.01, 0.5, -0.01, np.nan]),
    lead_steps=st.sampled_from([1, 2, 0, True]),
    system=st.sampled_from(["make_lorenz63", "make_lorenz96"]),
)
def test_make_functions_are_finite_or_refuse_clearly(
    n_trajectories, n_steps, dt, lead_steps, system, property_cases
):
    make = getattr(datasets, system)
    check_outcome(
        lambda: make(n_trajectories, n_steps, dt=dt, burn_in=50,
                     lead_steps=lead_steps, random_state=0, cache=False).X,
        ["n_trajectories", "n_steps", "dt", "lead_steps"],
    )
    property_cases[f"datasets.{system}"] += 1


@SETTINGS
@given(
    y_true=arrays(3), y_pred=arrays(3),
    std=st.sampled_from([None, 1.0, [1.0, 2.0, 3.0], [1.0, 2.0], 0.0, "a", np.nan]),
)
def test_nrmse_is_finite_or_refuses_clearly(y_true, y_pred, std, property_cases):
    # NaN in the forecast gives NaN at that lead: the documented marker
    nan_inside = any(
        np.asarray(a).dtype.kind == "f" and np.isnan(a).any() for a in (y_true, y_pred)
    )
    check_outcome(lambda: metrics.nrmse(y_true, y_pred, std=std),
                  ["y_true", "y_pred", "std"], allow_nan=nan_inside)
    property_cases["metrics.nrmse"] += 1


@SETTINGS
@given(
    y_true=arrays(3, ndim=3), y_pred=arrays(3, ndim=3),
    dt=st.sampled_from([0.01, 0.0, -1.0, np.nan, True]),
)
def test_valid_prediction_time_is_finite_or_refuses_clearly(
    y_true, y_pred, dt, property_cases
):
    check_outcome(lambda: metrics.valid_prediction_time(y_true, y_pred, dt=dt),
                  ["y_true", "y_pred", "dt", "std"])
    property_cases["metrics.valid_prediction_time"] += 1


@SETTINGS
@given(
    X=arrays(3), Y=arrays(3),
    bins=st.sampled_from([10, [10, 10, 10], [10, 10], 0, True, 2.5, np.int64(5)]),
    metric=st.sampled_from(["hellinger_distance", "nearest_neighbour_distances",
                            "extreme_fraction"]),
)
def test_generation_metrics_are_finite_or_refuse_clearly(
    X, Y, bins, metric, property_cases
):
    if metric == "hellinger_distance":
        def call():
            return metrics.hellinger_distance(X, Y, bins=bins)
        names = ["X", "Y", "bins"]
    else:
        def call():
            return getattr(metrics, metric)(X, Y)
        names = ["generated", "reference"]
    check_outcome(call, names)
    property_cases[f"metrics.{metric}"] += 1


@SETTINGS
@given(
    n_steps=st.sampled_from([1, 10, 0, -1, True, np.int64(10), 2.5, "a"]),
    first=st.sampled_from([0.008, 0.0, -1.0, np.nan, np.inf, 1e-4, 0.5, True]),
    second=st.sampled_from([0.9, 1.0, 1.5, 0.0, np.nan, 0.03, True]),
    kind=st.sampled_from(["cosine", "linear"]),
)
def test_schedules_are_finite_or_refuse_clearly(
    n_steps, first, second, kind, property_cases
):
    if kind == "cosine":
        def call():
            schedule = diffusion.cosine_schedule(n_steps, s=first, max_beta=second)
            return schedule.alpha_bar
        names = ["n_steps", "s", "max_beta"]
    else:
        def call():
            return diffusion.linear_schedule(n_steps, first, second).alpha_bar
        names = ["n_steps", "beta_start", "beta_end"]
    shape = (int(n_steps) + 1,) if isinstance(n_steps, int | np.integer) else None
    check_outcome(call, names, shape)
    property_cases[f"diffusion.{kind}_schedule"] += 1


@SETTINGS
@given(
    n_features=st.sampled_from([3, 0, True, np.int64(3), 2.5]),
    n_hidden=st.sampled_from([4, 0, -1, True, np.int64(4)]),
    n_blocks=st.sampled_from([1, 0, -1, True]),
)
def test_denoiser_builds_or_refuses_clearly(n_features, n_hidden, n_blocks,
                                            property_cases):
    def call():
        network = diffusion.Denoiser(n_features, n_hidden, n_blocks,
                                     time_embedding_dim=8, n_steps=10)
        return network(torch.zeros(2, n_features), 3).detach().numpy()

    shape = (2, n_features) if isinstance(n_features, int) else None
    check_outcome(call, ["n_features", "n_hidden", "n_blocks"], shape)
    property_cases["diffusion.Denoiser"] += 1


@FEW
@given(
    x0=arrays(2),
    dt=st.sampled_from([0.1, 5.0, 0.0, -0.1, np.nan, True]),
    n_steps=st.sampled_from([3, 1, 0, True, np.int64(3)]),
)
def test_make_trajectories_is_finite_or_refuses_clearly(x0, dt, n_steps,
                                                        property_cases):
    def call():
        return datasets.make_trajectories(np.square, x0, n_steps, dt=dt).X

    # dx/dt = x^2 blows up in finite time: a large dt or x0 must say so
    check_outcome(call, ["x0", "dt", "n_steps", "lead_steps", "vector_field"])
    property_cases["datasets.make_trajectories"] += 1


@FEW
@given(name=st.sampled_from(["folder", "file", "below_file", True, 3, None]))
def test_get_data_home_gives_a_folder_or_refuses_clearly(name, tmp_path_factory,
                                                         property_cases):
    root = tmp_path_factory.mktemp("home")
    (root / "file").write_text("")
    data_home = {"folder": root / "new", "file": root / "file",
                 "below_file": root / "file" / "x"}.get(name, name)
    if data_home is None:
        return  # the user's default folder: not created by a test
    try:
        folder = datasets.get_data_home(data_home)
    except (ValueError, TypeError) as error:
        assert "data_home" in str(error), error
    else:
        assert np.asarray(__import__("os").path.isdir(folder))
    property_cases["datasets.get_data_home"] += 1


@SETTINGS
@given(
    kind=st.sampled_from(["nrmse", "vpt", "rollout"]),
    n_steps=st.sampled_from([2, 1, 0, True, np.int64(2)]),
    std=st.sampled_from([None, 1.0, [1.0, 1.0, 1.0], [1.0, 2.0], -1.0, "a"]),
    n_rollouts=st.sampled_from([None, 3, 0, True]),
)
def test_scorers_are_made_and_score_or_refuse_clearly(
    kind, n_steps, std, n_rollouts, fitted, data, property_cases
):
    forecaster, before = fitted["SurrogateForecaster"]

    def make():
        if kind == "nrmse":
            return metrics.make_nrmse_scorer(std=std)
        if kind == "vpt":
            return metrics.make_vpt_scorer(n_steps, 0.01, std=std,
                                           n_rollouts=n_rollouts)
        return metrics.make_rollout_scorer(n_steps, std=std, n_rollouts=n_rollouts)

    names = ["n_steps", "std", "n_rollouts"]
    try:
        scorer = make()
    except (ValueError, TypeError) as error:
        assert any(name in str(error) for name in names), error
    else:
        X, y = data
        check_outcome(lambda: scorer(forecaster, X, y), names + ["X", "y"], ())
    assert_array_equal(forecaster.predict(data[0]), before)
    property_cases[f"metrics.make_{kind}_scorer"] += 1


@SETTINGS
@given(
    t_start=st.sampled_from([10, 1, 0, -3, True, np.int64(10), 2.5, np.nan]),
    n_steps=st.sampled_from([3, 20, 0, True, np.int64(3)]),
    name=st.sampled_from(["cosine", "linear", "other", 3]),
)
def test_grids_and_named_schedules_are_valid_or_refuse_clearly(
    t_start, n_steps, name, property_cases
):
    def grid():
        return diffusion.timestep_grid(t_start, n_steps).double().numpy()

    check_outcome(grid, ["t_start", "n_steps"])
    check_outcome(lambda: diffusion.get_schedule(name, 10).alpha_bar.numpy(),
                  ["schedule"], (11,))
    property_cases["diffusion.timestep_grid/get_schedule"] += 1
