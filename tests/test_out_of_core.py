"""Arrays larger than memory: memmaps and Dask arrays through the featurizers,
the ridges and SurrogateForecaster, never loaded (or transformed) whole."""

import os
import tracemalloc

import numpy as np
import pytest
from sklearn.frozen import FrozenEstimator

from skdiffusion import (
    DiffusionFeaturizer,
    RFFFeaturizer,
    StreamingRidge,
    StreamingRidgeCV,
    SurrogateForecaster,
)
from skdiffusion._out_of_core import is_dask_array, spooled

da = pytest.importorskip("dask.array")


@pytest.fixture(autouse=True, scope="module")
def _one_thread(one_torch_thread):
    """torch on one thread for this module (the fixture is in conftest)."""


def memmapped(array, tmp_path, name):
    out = np.lib.format.open_memmap(
        tmp_path / f"{name}.npy", mode="w+", dtype=array.dtype, shape=array.shape
    )
    out[:] = array
    out.flush()
    return np.load(tmp_path / f"{name}.npy", mmap_mode="r")


def pairs(n=4_000, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3)).astype(np.float32)
    return X, (np.sin(X) @ rng.normal(size=(3, 2))).astype(np.float32)


def peak_numpy_bytes(call):
    """Peak bytes numpy allocated during ``call()`` (numpy reports to tracemalloc)."""
    tracemalloc.start()
    try:
        call()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_ridge_on_features_of_a_memmap_never_holds_the_feature_matrix(tmp_path):
    def ridge():
        transformer = RFFFeaturizer(256, random_state=0)
        return StreamingRidge(1e-3, transformer=transformer, chunk_size=1_000)

    peaks = {}
    for n in (10_000, 40_000):
        X, y = pairs(n)
        X_map = memmapped(X, tmp_path, f"X{n}")
        y_map = memmapped(y, tmp_path, f"y{n}")
        fitted = ridge()
        peaks[n] = peak_numpy_bytes(lambda: fitted.fit(X_map, y_map))  # noqa: B023
    # 30,000 more rows would hold 31 MB more of float32 features
    assert peaks[40_000] - peaks[10_000] < 30_000 * 256 * 4 / 10
    np.testing.assert_allclose(fitted.coef_, ridge().fit(X, y).coef_, rtol=1e-6)


def test_dask_states_are_spooled_block_by_block_never_computed_whole(monkeypatch):
    X, y = pairs(20_000)

    def refuse(self, *args, **kwargs):
        raise AssertionError("a whole Dask array was converted to numpy")

    monkeypatch.setattr(da.Array, "__array__", refuse)
    ridge = StreamingRidgeCV(
        (1e-3, 1e-2),
        transformer=RFFFeaturizer(64, random_state=0),
        chunk_size=2_000,
        random_state=0,
    )
    ridge.fit(da.from_array(X, chunks=(5_000, 3)), da.from_array(y, (5_000, 2)))
    in_memory = StreamingRidgeCV(
        (1e-3, 1e-2),
        transformer=RFFFeaturizer(64, random_state=0),
        chunk_size=2_000,
        random_state=0,
    ).fit(X, y)
    np.testing.assert_allclose(ridge.coef_, in_memory.coef_, rtol=1e-6)
    assert ridge.alpha_ == in_memory.alpha_


@pytest.fixture(scope="module")
def featurizer():
    X, _ = pairs(512)
    return DiffusionFeaturizer(
        n_hidden=8,
        n_blocks=1,
        feature_times=(0, 100),
        max_iter=5,
        batch_size=64,
        random_state=0,
        device="cpu",
        dtype="float32",
    ).fit(X)


@pytest.mark.parametrize("make", ["rff", "diffusion"])
def test_transform_of_a_dask_array_is_a_lazy_dask_array(make, featurizer):
    X, _ = pairs(1_000)
    transformer = (
        featurizer if make == "diffusion" else RFFFeaturizer(32, random_state=0).fit(X)
    )
    lazy = transformer.transform(da.from_array(X, chunks=(300, 2)))
    assert is_dask_array(lazy)
    assert lazy.numblocks == (4, 1)  # one transform per block of rows
    expected = transformer.transform(X)
    assert lazy.dtype == expected.dtype and lazy.shape == expected.shape
    np.testing.assert_array_equal(lazy.compute(), expected)


def test_featurizer_fit_on_a_memmap_or_dask_array_is_fit_on_the_array(
    featurizer, tmp_path
):
    X, _ = pairs(512)
    for data in (memmapped(X, tmp_path, "X"), da.from_array(X, chunks=(100, 3))):
        refit = DiffusionFeaturizer(**featurizer.get_params()).fit(data)
        for name, value in featurizer.network_state_.items():
            np.testing.assert_array_equal(refit.network_state_[name], value)


def test_surrogate_forecaster_fits_from_memmaps_and_dask(featurizer, tmp_path):
    X, _ = pairs(3_000)
    Y = X + 0.1 * np.tanh(X)
    head = StreamingRidge(1e-3, transformer=FrozenEstimator(featurizer), chunk_size=500)
    expected = SurrogateForecaster(head).fit(X, Y).predict(X[:5])
    inputs = [
        (memmapped(X, tmp_path, "X"), memmapped(Y, tmp_path, "Y")),
        (da.from_array(X, chunks=(700, 3)), da.from_array(Y, chunks=(700, 3))),
    ]
    for X_in, Y_in in inputs:
        forecaster = SurrogateForecaster(head).fit(X_in, Y_in)
        np.testing.assert_allclose(forecaster.predict(X[:5]), expected, rtol=1e-5)


def test_spooled_memmap_is_read_only_and_leaves_no_file(tmp_path):
    X = np.arange(12.0).reshape(6, 2)
    spool = spooled(da.from_array(X, chunks=(4, 2)), folder=tmp_path)
    np.testing.assert_array_equal(spool, X)
    assert isinstance(spool, np.memmap) and not spool.flags.writeable
    assert os.listdir(tmp_path) == []
    assert spooled(X) is X


def test_the_paper_plan_fits_16_gb_only_with_streamed_heads(unit_probe):
    import dataclasses

    from skdiffusion.experiments import _plan
    from skdiffusion.experiments.surrogate import PRESETS

    timing = unit_probe
    paper = PRESETS["paper"]
    plan = _plan.surrogate_plan(paper, timing)
    assert plan["memory_gb"].max() < 16
    assert plan["rows"].max() >= 16_000_000
    materialised = _plan.surrogate_plan(
        dataclasses.replace(paper, stream_heads=False), timing
    )
    shallow = materialised[materialised["stage"].str.startswith("shallow")]
    # 1.6e7 rows x 512 features in float64, and a float32 copy, beside the
    # data (1.92 GB) and the fit's next states and increments (0.77 GB)
    np.testing.assert_allclose(shallow["memory_gb"] - 1.92 - 0.77, 98.3, rtol=0.001)
    assert "Over 16 GB: shallow head" in _plan.format_plan(materialised)


def test_the_selection_paper_plan_fits_16_gb_only_with_streamed_heads(unit_probe):
    import dataclasses

    from skdiffusion.experiments import _plan, _plan_others
    from skdiffusion.experiments.selection import PRESETS

    paper = PRESETS["paper"]
    streamed = _plan_others.selection_plan(paper, unit_probe)
    cached = _plan_others.selection_plan(
        dataclasses.replace(paper, stream_heads=False), unit_probe
    )
    assert streamed["memory_gb"].max() < 4
    # a fold's 786,432 x 1536 features in float64, and its copy from the cache
    ridge = cached.set_index("stage").loc["ridge head on RFF(1536) (cached)"]
    assert ridge["rows"] == 786_432
    np.testing.assert_allclose(ridge["memory_gb"] - streamed["memory_gb"][0], 19.33,
                               rtol=0.01)
    assert "Over 16 GB: ridge head on RFF(1536) (cached)" in _plan.format_plan(cached)
    # the folds and the refit, for each of the six models
    assert list(streamed["runs"]) == [1, 1, *[5] * 6]


def test_plans_count_the_runs_of_each_paper_preset(unit_probe):
    from skdiffusion.experiments import _plan_others, assimilation, generation, scaling

    timing = unit_probe
    plan = _plan_others.generation_plan(generation.PRESETS["paper"], timing)
    # 10 seeds x 3 parameterisations x 2 schedules, 97,656 steps of 16,384 each
    featurizers = plan.set_index("stage").loc["featurizer training (each model)"]
    assert featurizers["runs"] == 60
    np.testing.assert_allclose(featurizers["cpu_s"], 60 * 97_656 * 16_384 * 1e-6)
    p = scaling.PRESETS["paper"]
    models = ("RFF(1536)+ridge", "transfer(t=0,400)+shallow")
    plan = _plan_others.scaling_plan(p, timing, models).set_index("stage")
    assert plan.loc["RFF(1536)+ridge (streamed)", "runs"] == 10 * (18 + 8 + 7)
    # batches of 16,384 states: a few MB of features, not 2^20 x 512
    shallow = plan.loc["transfer(t=0,400)+shallow (streamed)"]
    assert shallow["memory_gb"] - plan["memory_gb"].iloc[0] < 0.2
    p = assimilation.PRESETS["paper"]
    cycles = dict.fromkeys(
        ["diffusion EnOI", "static diagonal EnOI", "static full EnOI", "3D-Var",
         "ETKF (3)", "ETKF (12)"], 1.0,
    )
    plan = _plan_others.assimilation_plan(p, timing, cycles).set_index("stage")
    # 3D-Var: 10 inflations x 6,000 tuning cycles, then 55,000 test cycles
    np.testing.assert_allclose(
        plan.loc["3D-Var: 10 tuned, then tested", "cpu_s"], 10 * 6_000 + 55_000
    )
    assert np.isnan(plan.loc["3D-Var: 10 tuned, then tested", "gpu_s"])
    diffusion = plan.loc["diffusion EnOI: 26 tuned, then tested"]
    assert diffusion["cpu_s"] > 26 * 6_000  # tau > 130 takes more steps
    assert plan["memory_gb"].max() < 16


def test_experiment_plan_names_presets_and_refuses_other_experiments(unit_probe):
    from skdiffusion.experiments import experiment_plan

    plan = experiment_plan("generation")  # the paper preset
    assert plan["runs"].max() == 60
    # the process after the probe (0.5 GB), counted in every stage
    quick = experiment_plan("generation", "quick")
    assert quick["memory_gb"].between(0.5, 0.6).all()
    with pytest.raises(ValueError, match="Unknown experiment.*spatial"):
        experiment_plan("spatial")
    with pytest.raises(ValueError, match="Unknown preset.*huge"):
        experiment_plan("selection", "huge")


def test_plan_totals_are_in_a_readable_unit():
    from skdiffusion.experiments._plan import _duration

    assert [_duration(s) for s in (30, 203, 7_200, 4_443_400)] == [
        "30 s", "3.4 minutes", "2.0 hours", "51.4 days",
    ]
