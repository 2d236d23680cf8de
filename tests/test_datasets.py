"""Tests for skdiffusion.datasets: integrator accuracy, the systems' known
statistics, and the make_* functions' contract."""

import functools
import time

import numpy as np
import pytest
from scipy.integrate import solve_ivp
from sklearn.model_selection import GroupKFold

from skdiffusion.datasets import (
    LORENZ63_SCALE,
    LORENZ63_SHIFT,
    get_data_home,
    lorenz63,
    lorenz96,
    make_lorenz63,
    make_lorenz96,
    make_trajectories,
    normalize_states,
    pairs_from_trajectories,
    rk4,
)
from skdiffusion.datasets._generators import _measure_lorenz96_climatology
from skdiffusion.datasets._systems import LORENZ96_MEAN, LORENZ96_STD


@pytest.fixture(scope="module")
def attractor_state():
    """A Lorenz 63 state on the attractor (20 MTU from (1, 1, 1))."""
    return rk4(lorenz63, [1.0, 1.0, 1.0], 0.01, 2000, return_trajectory=False)


# --- vector fields ---------------------------------------------------------


def test_lorenz63_matches_the_equations():
    x = np.random.default_rng(0).normal(scale=10, size=(4, 5, 3))
    u, v, w = np.moveaxis(x, -1, 0)
    expected = np.stack([10 * (v - u), u * (28 - w) - v, u * v - 8 / 3 * w], -1)
    np.testing.assert_allclose(lorenz63(x), expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(
        lorenz63([1.0, 2.0, 3.0], sigma=1.0, rho=2.0, beta=3.0), [1.0, -3.0, -7.0]
    )


def test_lorenz96_matches_the_equations():
    x = np.random.default_rng(0).normal(size=(3, 7))
    n = x.shape[-1]
    expected = np.array(
        [
            [(row[(i + 1) % n] - row[i - 2]) * row[i - 1] - row[i] + 8.0
             for i in range(n)]
            for row in x
        ]
    )
    np.testing.assert_allclose(lorenz96(x), expected, rtol=1e-12)
    np.testing.assert_array_equal(lorenz96(np.full(6, 3.0), forcing=3.0), 0.0)


# --- the integrator --------------------------------------------------------


def test_rk4_matches_dop853_over_one_mtu(attractor_state):
    reference = solve_ivp(
        lambda t, x: lorenz63(x), (0.0, 1.0), attractor_state, method="DOP853",
        rtol=1e-12, atol=1e-12,
    ).y[:, -1]
    ours = rk4(lorenz63, attractor_state, 0.001, 1000, return_trajectory=False)
    assert np.max(np.abs(ours - reference)) < 1e-6


def test_rk4_error_shrinks_as_dt_to_the_fourth(attractor_state):
    reference = solve_ivp(
        lambda t, x: lorenz63(x), (0.0, 1.0), attractor_state, method="DOP853",
        rtol=1e-13, atol=1e-13,
    ).y[:, -1]
    dts = [0.02, 0.01, 0.005]
    errors = [
        np.linalg.norm(
            rk4(lorenz63, attractor_state, dt, round(1 / dt), return_trajectory=False)
            - reference
        )
        for dt in dts
    ]
    orders = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    np.testing.assert_allclose(orders, 4.0, atol=0.3)


def test_rk4_batch_equals_single_runs(attractor_state):
    starts = attractor_state + np.array([[0.0, 0.0, 0.0], [1.0, -2.0, 3.0]])
    batch = rk4(lorenz63, starts, 0.01, 50)
    assert batch.shape == (2, 51, 3)
    for start, path in zip(starts, batch, strict=True):
        np.testing.assert_allclose(rk4(lorenz63, start, 0.01, 50), path, rtol=1e-12)
    np.testing.assert_array_equal(batch[:, 0], starts)
    last = rk4(lorenz63, starts, 0.01, 50, return_trajectory=False)
    np.testing.assert_array_equal(last, batch[:, -1])


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"func": "lorenz63"}, "func"),
        ({"x0": [1.0, np.nan, 1.0]}, "x0"),
        ({"x0": 1.0}, "x0"),
        ({"dt": np.inf}, "dt"),
        ({"dt": "0.01"}, "dt"),
        ({"n_steps": -1}, "n_steps"),
        ({"n_steps": 1.5}, "n_steps"),
    ],
)
def test_rk4_bad_input_raises_value_error_naming_the_argument(kwargs, name):
    arguments = {"func": lorenz63, "x0": [1.0, 1.0, 1.0], "dt": 0.01, "n_steps": 3}
    with pytest.raises(ValueError, match=name):
        rk4(**{**arguments, **kwargs})


def test_rk4_verbose_reports_progress(capsys):
    rk4(lorenz63, [1.0, 1.0, 1.0], 0.01, 20)
    assert capsys.readouterr() == ("", "")
    rk4(lorenz63, [1.0, 1.0, 1.0], 0.01, 20, verbose=True)
    out, err = capsys.readouterr()
    assert out == "" and "20/20 steps" in err


# --- the systems' known statistics ------------------------------------------


def test_lorenz63_climatology_matches_the_papers_normalisation():
    # 256 x 100 MTU = 25,600 MTU. Normalised units make the 2 % tolerance
    # |mean - shift| < 0.02 scale (the paper's x, y shifts are ~0.045, so a
    # relative tolerance on the shift itself would be meaningless) and
    # |std - scale| < 0.02 scale. Measured deviations: < 0.01 and < 0.001.
    X = make_lorenz63(256, 10_000, burn_in=2000, random_state=0, cache=False).X
    np.testing.assert_allclose(X.mean(axis=0), 0.0, atol=0.02)
    np.testing.assert_allclose(X.std(axis=0), 1.0, atol=0.02)


def largest_lyapunov_exponent(starts, dt=0.01, n_intervals=2000, steps=10):
    """Benettin's method: follow a twin 1e-8 away, renormalising every
    ``steps`` steps, and average the log growth rate over trajectories."""
    delta = 1e-8
    direction = np.ones_like(starts) / np.sqrt(3.0)
    pair = np.stack([starts, starts + delta * direction])
    log_growth = 0.0
    for _ in range(n_intervals):
        pair = rk4(lorenz63, pair, dt, steps, return_trajectory=False)
        separation = pair[1] - pair[0]
        distance = np.linalg.norm(separation, axis=-1, keepdims=True)
        log_growth += np.log(distance / delta)
        pair[1] = pair[0] + separation * (delta / distance)
    return float(np.mean(log_growth) / (n_intervals * steps * dt))


def test_lorenz63_largest_lyapunov_exponent_is_0_9():
    # 16 trajectories x 200 MTU, starting on the attractor.
    starts = make_lorenz63(16, 2, lead_steps=1, random_state=0).trajectories[:, 0]
    assert largest_lyapunov_exponent(starts) == pytest.approx(0.90, abs=0.03)


def test_lorenz96_climatology_is_the_known_one():
    # F=8, 40 variables: 8 x 50 MTU, pooled over variables.
    data = make_lorenz96(8, 5000, burn_in=2000, random_state=0, normalize=False)
    assert data.trajectories.mean() == pytest.approx(2.34, abs=0.1)
    assert data.trajectories.std() == pytest.approx(3.64, abs=0.15)



def test_lorenz96_stored_climatology_matches_a_fresh_measurement():
    mean, std = _measure_lorenz96_climatology(40, 8.0)  # 16 x 100 MTU
    assert (mean, std) == pytest.approx((LORENZ96_MEAN, LORENZ96_STD), abs=0.03)
    data = make_lorenz96(1, 2, lead_steps=1)
    np.testing.assert_array_equal(data.shift, np.full(40, LORENZ96_MEAN))
    np.testing.assert_array_equal(data.scale, np.full(40, LORENZ96_STD))


def test_lorenz96_other_settings_are_normalised_by_their_own_climatology():
    data = make_lorenz96(8, 3000, n_dim=12, forcing=6.0, random_state=0)
    assert data.X.shape[1] == 12
    assert abs(data.X.mean()) < 0.1 and abs(data.X.std() - 1) < 0.1


def test_lorenz96_climatology_of_a_large_ring_is_that_of_40_variables():
    # One trajectory holds the 640 variables of 16 of 40: same sample size.
    mean, std = _measure_lorenz96_climatology(1000, 8.0)
    assert (mean, std) == pytest.approx((LORENZ96_MEAN, LORENZ96_STD), abs=0.03)


def test_lorenz96_of_4000_variables_is_fast_and_normalised():
    start = time.perf_counter()
    data = make_lorenz96(1, 500, n_dim=4000, burn_in=1000, random_state=0)
    # measured 0.3 s on 2 shared cores, 1.7 s with the climatology's first
    # run (it was 40 s, and 5 GB, before the climatology run was sized by
    # the number of variables)
    assert time.perf_counter() - start < 20
    assert data.X.shape == (490, 4000)
    assert abs(data.X.mean()) < 0.05 and abs(data.X.std() - 1) < 0.05


# --- make_* contract ---------------------------------------------------------


@pytest.mark.parametrize("make", [make_lorenz63, make_lorenz96])
def test_same_random_state_same_data_different_different(make):
    kwargs = dict(n_trajectories=3, n_steps=200, burn_in=100)
    first, again = make(**kwargs, random_state=1), make(**kwargs, random_state=1)
    other = make(**kwargs, random_state=2)
    np.testing.assert_array_equal(first.trajectories, again.trajectories)
    np.testing.assert_array_equal(first.X, again.X)
    assert np.abs(first.trajectories - other.trajectories).min() > 0
    # A RandomState instance is used, not reset: two draws differ.
    rng = np.random.RandomState(0)
    assert not np.array_equal(
        make(**kwargs, random_state=rng).X, make(**kwargs, random_state=rng).X
    )


def test_trajectories_differ_from_each_other():
    data = make_lorenz63(64, 2, lead_steps=1, random_state=0)
    starts = data.trajectories[:, 0]
    # Spread over the attractor: the across-trajectory std is climatological.
    assert np.all(starts.std(axis=0) > 0.7 * LORENZ63_SCALE)
    # And on it: inside the attractor's bounding box.
    assert np.all(np.abs(starts[:, :2]) < [21, 28])
    assert np.all((starts[:, 2] > 0) & (starts[:, 2] < 50))


@pytest.mark.parametrize("make", [make_lorenz63, make_lorenz96])
@pytest.mark.parametrize("normalize", [True, False])
def test_X_y_groups_are_consistent_with_trajectories(make, normalize):
    n_trajectories, n_steps, lead = 3, 40, 7
    data = make(n_trajectories, n_steps, lead_steps=lead, burn_in=50,
                normalize=normalize, random_state=0)
    paths = data.trajectories
    n_dim = paths.shape[-1]
    n_pairs = n_steps - lead
    assert data.X.shape == data.y.shape == (n_trajectories * n_pairs, n_dim)
    np.testing.assert_array_equal(data.groups, np.repeat(np.arange(3), n_pairs))
    # Row r of trajectory g pairs step i with step i + lead of the same g.
    raw_X = data.X * data.scale + data.shift
    np.testing.assert_allclose(raw_X, paths[:, :-lead].reshape(-1, n_dim), atol=1e-9)
    np.testing.assert_allclose(
        data.y * data.scale, (paths[:, lead:] - paths[:, :-lead]).reshape(-1, n_dim),
        atol=1e-9,
    )
    if not normalize:
        np.testing.assert_array_equal(data.X, paths[:, :-lead].reshape(-1, n_dim))
    assert data.dt == 0.01 and data.lead_steps == lead
    assert len(data.feature_names) == n_dim and data.DESCR


# --- any vector field ---------------------------------------------------------


def rk4_factor(z):
    """RK4's growth per step of dx/dt = a x, z = a dt: the Taylor series of
    exp(z) to fourth order."""
    return 1 + z + z**2 / 2 + z**3 / 6 + z**4 / 24


def test_make_trajectories_of_exponential_decay_by_hand():
    x0 = np.array([[1.0, -2.0], [0.5, 4.0]])
    data = make_trajectories(lambda x: -x, x0, 6, dt=0.1, burn_in=3, lead_steps=2)
    powers = rk4_factor(-0.1) ** np.arange(3, 9)  # recorded steps 3..8
    expected = x0[:, None, :] * powers[None, :, None]
    np.testing.assert_allclose(data.trajectories, expected, rtol=1e-14)
    # ... within RK4's error of the exact solution x0 exp(-t)
    exact = x0[:, None, :] * np.exp(-0.1 * np.arange(3, 9))[None, :, None]
    np.testing.assert_allclose(data.trajectories, exact, rtol=1e-6)
    # 4 pairs per trajectory, 2 steps apart, never across trajectories
    np.testing.assert_array_equal(data.groups, [0] * 4 + [1] * 4)
    np.testing.assert_allclose(data.X, expected[:, :4].reshape(-1, 2), rtol=1e-14)
    np.testing.assert_allclose(
        data.y, (expected[:, 2:] - expected[:, :4]).reshape(-1, 2), rtol=1e-13
    )
    assert data.dt == 0.1 and data.lead_steps == 2
    assert data.feature_names == ["x0", "x1"] and "3 discarded steps" in data.DESCR
    np.testing.assert_array_equal(data.shift, [0.0, 0.0])
    np.testing.assert_array_equal(data.scale, [1.0, 1.0])


def test_make_trajectories_of_a_rotation_is_rk4s_step_matrix_to_the_power():
    # dx/dt = (-y, x): RK4 multiplies by the Taylor polynomial of exp(dt A)
    A = np.array([[0.0, -1.0], [1.0, 0.0]])
    dt = 0.05
    step = sum(np.linalg.matrix_power(dt * A, k) / np.prod(np.arange(1, k + 1))
               for k in range(5))
    data = make_trajectories(lambda x: x @ A.T, [1.0, 0.0], 40, dt=dt)
    path = data.trajectories[0]
    for k in (1, 17, 39):
        np.testing.assert_allclose(
            path[k], np.linalg.matrix_power(step, k) @ [1.0, 0.0], atol=1e-14
        )
    # close to the exact rotation (cos t, sin t)
    t = dt * np.arange(40)
    np.testing.assert_allclose(path, np.c_[np.cos(t), np.sin(t)], atol=1e-6)


def test_make_trajectories_equals_make_lorenz96_on_its_initial_states():
    data = make_lorenz96(2, 30, n_dim=8, burn_in=20, lead_steps=3, random_state=0)
    start = data.trajectories[:, 0]
    field = functools.partial(lorenz96, forcing=8.0)
    again = make_trajectories(field, start, 30, dt=0.01, lead_steps=3,
                              shift=data.shift, scale=data.scale)
    np.testing.assert_allclose(again.trajectories, data.trajectories, rtol=1e-12)
    np.testing.assert_allclose(again.X, data.X, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(again.y, data.y, rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(again.groups, data.groups)


def test_make_trajectories_normalises_with_the_given_shift_and_scale():
    data = make_trajectories(lambda x: np.ones_like(x), [[1.0, 10.0]], 3, dt=1.0,
                             shift=[1.0, 10.0], scale=[2.0, 4.0], dtype=np.float32)
    # x(t) = x0 + t
    np.testing.assert_array_equal(data.trajectories[0], [[1, 10], [2, 11], [3, 12]])
    np.testing.assert_array_equal(data.X, [[0.0, 0.0], [0.5, 0.25]])
    np.testing.assert_array_equal(data.y, [[0.5, 0.25], [0.5, 0.25]])
    assert data.X.dtype == data.trajectories.dtype == np.float32


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"vector_field": "lorenz63"}, "vector_field"),
        ({"vector_field": lambda x: x[:, :1]}, "vector_field"),
        ({"vector_field": lambda x: x.sum()}, "vector_field"),
        ({"x0": [[1.0, np.nan]]}, "x0"),
        ({"x0": np.zeros((2, 2, 2))}, "x0"),
        ({"x0": "state"}, "x0"),
        ({"dt": 0.0}, "dt"),
        ({"n_steps": 0}, "n_steps"),
        ({"lead_steps": 5}, "lead_steps"),
        ({"burn_in": -1}, "burn_in"),
        ({"scale": [1.0, 0.0]}, "scale"),
        ({"shift": [1.0, 2.0, 3.0]}, "shift"),
        ({"dtype": np.int64}, "dtype"),
    ],
)
def test_make_trajectories_bad_input_names_the_argument(kwargs, name):
    arguments = {"vector_field": lambda x: -x, "x0": [[1.0, 2.0]], "n_steps": 5,
                 "dt": 0.1, **kwargs}
    with pytest.raises(ValueError, match=name):
        make_trajectories(**arguments)


# --- pairs from a user's own trajectories ---------------------------------------


def test_pairs_from_ragged_trajectories_by_hand():
    first = np.array([[0.0, 0.0], [1.0, 10.0], [3.0, 30.0], [6.0, 60.0]])
    second = np.array([[100.0, -1.0], [101.0, -2.0], [103.0, -4.0]])
    X, y, groups = pairs_from_trajectories([first, second], lead_steps=2)
    # first: steps 0, 1 pair with 2, 3; second: step 0 with 2; none straddles.
    np.testing.assert_array_equal(X, [[0, 0], [1, 10], [100, -1]])
    np.testing.assert_array_equal(y, [[3, 30], [5, 50], [3, -3]])
    np.testing.assert_array_equal(groups, [0, 0, 1])
    assert X.dtype == y.dtype == np.float64


def test_pairs_lead_one_is_the_default():
    path = np.array([[1.0], [2.0], [4.0]])
    X, y, groups = pairs_from_trajectories([path])
    np.testing.assert_array_equal(X.ravel(), [1, 2])
    np.testing.assert_array_equal(y.ravel(), [1, 2])
    np.testing.assert_array_equal(groups, [0, 0])


def test_a_trajectory_shorter_than_the_lead_gives_no_pair():
    short = np.array([[5.0], [6.0]])  # 2 states, lead 2: no pair
    long = np.array([[0.0], [1.0], [3.0]])
    X, y, groups = pairs_from_trajectories([short, long, short], lead_steps=2)
    np.testing.assert_array_equal(X.ravel(), [0])
    np.testing.assert_array_equal(y.ravel(), [3])
    np.testing.assert_array_equal(groups, [1])  # the index in the list


def test_pairs_of_a_3d_array_keep_float32():
    paths = np.arange(24, dtype=np.float32).reshape(2, 4, 3) ** 2
    X, y, groups = pairs_from_trajectories(paths, lead_steps=3)
    assert X.dtype == y.dtype == np.float32
    np.testing.assert_array_equal(X, paths[:, 0])
    np.testing.assert_array_equal(y, paths[:, 3] - paths[:, 0])
    np.testing.assert_array_equal(groups, [0, 1])


@pytest.mark.parametrize("make", [make_lorenz63, make_lorenz96])
def test_make_functions_pair_like_pairs_from_trajectories(make):
    data = make(3, 30, lead_steps=4, burn_in=10, normalize=False, random_state=0)
    X, y, groups = pairs_from_trajectories(data.trajectories, lead_steps=4)
    np.testing.assert_array_equal(data.X, X)
    np.testing.assert_array_equal(data.y, y)
    np.testing.assert_array_equal(data.groups, groups)


@pytest.mark.parametrize(
    "trajectories, kwargs, name",
    [
        (np.zeros((5, 3)), {}, "trajectories"),  # one trajectory, not wrapped
        ([np.zeros((5, 3)), np.zeros((5, 2))], {}, r"trajectories\[1\]"),
        ([np.zeros(5)], {}, r"trajectories\[0\]"),
        ([np.array([[0.0], [np.nan]])], {}, r"trajectories\[0\]"),
        ([np.array([["a"], ["b"]])], {}, r"trajectories\[0\]"),
        ([], {}, "trajectories"),
        ("states", {}, "trajectories"),
        ([np.zeros((5, 3))], {"lead_steps": 0}, "lead_steps"),
        ([np.zeros((5, 3))], {"lead_steps": 1.5}, "lead_steps"),
        ([np.zeros((5, 3))], {"lead_steps": 5}, "lead_steps"),  # no pair left
    ],
)
def test_pairs_bad_input_raises_value_error_naming_the_argument(
    trajectories, kwargs, name
):
    with pytest.raises(ValueError, match=name):
        pairs_from_trajectories(trajectories, **kwargs)


def test_normalize_states_by_hand_keeps_float32_and_copies():
    states = np.array([[[1.0, 10.0], [3.0, 30.0]]], dtype=np.float32)
    normalised = normalize_states(states, [1.0, 10.0], [2.0, 5.0])
    np.testing.assert_array_equal(normalised, [[[0, 0], [1, 4]]])
    assert normalised.dtype == np.float32
    assert states[0, 1, 0] == 3.0  # copied
    same = normalize_states(states, 1.0, 2.0, copy=False)
    assert same is states and states[0, 1, 0] == 1.0


def test_normalize_states_gives_the_make_functions_X():
    data = make_lorenz63(2, 40, burn_in=10, random_state=0)
    states = normalize_states(data.trajectories, data.shift, data.scale)
    np.testing.assert_array_equal(states[:, :-10].reshape(-1, 3), data.X)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"shift": [0.0, 1.0, 2.0]}, "shift"),
        ({"scale": [1.0, 0.0]}, "scale"),
        ({"scale": np.inf}, "scale"),
        ({"scale": "1"}, "scale"),
        ({"states": 3.0}, "states"),
        ({"states": [["a", "b"]]}, "states"),
        ({"copy": "no"}, "copy"),
    ],
)
def test_normalize_states_bad_input_names_the_argument(kwargs, name):
    arguments = {"states": np.ones((4, 2)), "shift": 0.0, "scale": 1.0, **kwargs}
    with pytest.raises(ValueError, match=name):
        normalize_states(**arguments)


def test_lorenz63_uses_the_papers_constants():
    data = make_lorenz63(2, 20, burn_in=10, random_state=0)
    np.testing.assert_array_equal(data.shift, [0.0450, 0.0451, 23.5463])
    np.testing.assert_array_equal(data.scale, [7.9239, 9.0124, 8.6261])
    np.testing.assert_array_equal(LORENZ63_SHIFT, data.shift)
    assert data.trajectories.shape == (2, 20, 3)


def test_group_k_fold_never_splits_a_trajectory():
    data = make_lorenz63(4, 30, burn_in=10, random_state=0)
    for train, test in GroupKFold(n_splits=4).split(data.X, data.y, data.groups):
        assert not set(data.groups[train]) & set(data.groups[test])


def test_float32_output():
    data = make_lorenz63(2, 100, burn_in=10, random_state=0, dtype=np.float32)
    assert data.trajectories.dtype == data.X.dtype == data.y.dtype == np.float32
    reference = make_lorenz63(2, 100, burn_in=10, random_state=0)
    np.testing.assert_allclose(data.X, reference.X, atol=1e-5)


def test_verbose_prints_only_when_asked(capsys):
    make_lorenz63(2, 30, burn_in=10, random_state=0)
    assert capsys.readouterr() == ("", "")
    make_lorenz63(2, 30, burn_in=10, random_state=0, verbose=True)
    out, err = capsys.readouterr()
    assert out == "" and "29/29 steps" in err


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"n_steps": 0}, "n_steps"),
        ({"n_steps": 2.5}, "n_steps"),
        ({"n_steps": True}, "n_steps"),
        ({"n_trajectories": 0}, "n_trajectories"),
        ({"n_trajectories": "3"}, "n_trajectories"),
        ({"dt": 0.0}, "dt"),
        ({"dt": -0.01}, "dt"),
        ({"dt": np.nan}, "dt"),
        ({"dt": np.inf}, "dt"),
        ({"dt": "0.01"}, "dt"),
        ({"burn_in": -1}, "burn_in"),
        ({"lead_steps": 20}, "lead_steps"),
        ({"lead_steps": 0}, "lead_steps"),
        ({"normalize": "yes"}, "normalize"),
        ({"random_state": "seed"}, "random_state"),
        ({"cache": "sometimes"}, "cache"),
        ({"dtype": np.int64}, "dtype"),
        ({"dtype": "nonsense"}, "dtype"),
    ],
)
@pytest.mark.parametrize("make", [make_lorenz63, make_lorenz96])
def test_bad_input_raises_value_error_naming_the_argument(make, kwargs, name):
    arguments = {"n_trajectories": 2, "n_steps": 20, "burn_in": 10, **kwargs}
    with pytest.raises(ValueError, match=name):
        make(**arguments)


@pytest.mark.parametrize(
    "kwargs, name",
    [({"n_dim": 3}, "n_dim"), ({"forcing": np.nan}, "forcing"),
     ({"forcing": "8"}, "forcing")],
)
def test_lorenz96_bad_input(kwargs, name):
    with pytest.raises(ValueError, match=name):
        make_lorenz96(2, 20, **kwargs)


# --- data home and cache ------------------------------------------------------


def test_get_data_home_argument_environment_and_default(tmp_path, monkeypatch):
    folder = tmp_path / "given"
    assert get_data_home(folder) == str(folder) and folder.is_dir()
    monkeypatch.setenv("SKDIFFUSION_DATA", str(tmp_path / "from_env"))
    assert get_data_home() == str(tmp_path / "from_env")
    monkeypatch.delenv("SKDIFFUSION_DATA")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert get_data_home() == str(tmp_path / "skdiffusion_data")
    with pytest.raises(ValueError, match="data_home"):
        get_data_home(3)


def test_cache_serves_the_second_request_from_disk(tmp_path, monkeypatch):
    kwargs = dict(burn_in=10, random_state=0, cache=True, data_home=tmp_path)
    first = make_lorenz63(2, 50, **kwargs)
    assert any(tmp_path.rglob("*.pkl"))

    def fail(*args, **kwargs):
        raise AssertionError("integrated again instead of reading the cache")

    monkeypatch.setattr("skdiffusion.datasets._generators.rk4", fail)
    again = make_lorenz63(2, 50, **kwargs)
    np.testing.assert_array_equal(first.trajectories, again.trajectories)
    np.testing.assert_array_equal(first.y, again.y)
    # A different request is a different cache entry.
    with pytest.raises(AssertionError, match="integrated again"):
        make_lorenz63(2, 50, **{**kwargs, "random_state": 1})


def test_small_requests_are_not_cached_by_default(tmp_path, monkeypatch):
    make_lorenz63(2, 50, burn_in=10, random_state=0, data_home=tmp_path)
    make_lorenz63(2, 50, burn_in=10, random_state=0, cache=False, data_home=tmp_path)
    assert not any(tmp_path.iterdir())
    # 2 x 50 states of 3 values: cached from 300 values on.
    monkeypatch.setattr("skdiffusion.datasets._generators.CACHE_MIN_VALUES", 300)
    monkeypatch.setenv("SKDIFFUSION_DATA", str(tmp_path / "env"))
    make_lorenz63(2, 50, burn_in=10, random_state=0)
    assert any((tmp_path / "env").rglob("*.pkl"))
