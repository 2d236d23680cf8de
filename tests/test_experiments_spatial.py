"""The spatial surrogate experiment, on a tiny preset (seconds)."""

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from skdiffusion.experiments import spatial
from skdiffusion.experiments.surrogate import _torch_threads

pytest.importorskip("torch")

TINY = spatial.SpatialPreset(
    n_seeds=2,
    n_train_trajectories=2,
    n_train_steps=200,
    n_test_trajectories=1,
    n_test_steps=60,
    n_starts=4,
    n_leads=10,
    n_components=32,
    wavelengths=(3.0, 30.0),
    featurizer={**spatial.SpatialPreset().featurizer, "n_hidden": 4, "max_iter": 3,
                "batch_size": 32},
    network={**spatial.SpatialPreset().network, "max_iter": 3, "batch_size": 32},
)


@pytest.fixture(scope="module")
def table():
    return spatial.spatial_surrogate_comparison(TINY, random_state=0)


def test_table_has_a_row_per_model_seed_and_lead(table):
    assert set(table["model"]) == set(spatial.MODELS)
    assert table.groupby("model")["seed"].nunique().eq(TINY.n_seeds).all()
    assert len(table) == len(spatial.MODELS) * TINY.n_seeds * (TINY.n_leads + 1)
    step = TINY.dt * TINY.lead_steps
    np.testing.assert_allclose(sorted(set(table["lead_time"])),
                               step * np.arange(TINY.n_leads + 1), atol=1e-9)


def test_persistence_scores_the_size_of_the_increment(table):
    persistence = table[table["model"] == "persistence"]
    # one-step error of persistence = RMS increment over 0.1 MTU, about 0.5 std
    assert persistence["one_step"].between(0.3, 0.7).all()
    assert (persistence["fit_cpu"] < 1).all()
    first = persistence[np.isclose(persistence["lead_time"], 0.1)]
    np.testing.assert_allclose(first["nrmse"], first["one_step"])


def test_summary_reports_vpt_in_mtu_and_lyapunov_times(table):
    summary = spatial.summarize_spatial(table)
    assert list(summary.index) == list(spatial.MODELS)
    np.testing.assert_allclose(summary["vpt_lyapunov"], 1.68 * summary["vpt"])
    assert {"one_step", "fit_cpu", "nrmse@0.1", "nrmse@1"} <= set(summary.columns)
    assert "persistence" in spatial.format_summary(summary)


def test_runs_are_reproducible():
    models = ["persistence", "local RFF + ridge"]
    first = spatial.spatial_surrogate_comparison(TINY, models=models, random_state=3)
    again = spatial.spatial_surrogate_comparison(TINY, models=models, random_state=3)
    np.testing.assert_array_equal(first["nrmse"], again["nrmse"])


def test_unknown_model_or_preset_is_refused():
    with pytest.raises(ValueError, match="Unknown model"):
        spatial.spatial_surrogate_comparison(TINY, models=["cnn"])
    with pytest.raises(ValueError, match="Unknown preset"):
        spatial.spatial_surrogate_comparison("paper")


def test_preset_refuses_rollouts_longer_than_the_test_trajectories():
    with pytest.raises(ValueError, match="n_leads"):
        spatial.SpatialPreset(n_test_steps=50, n_leads=40)


def test_persistence_predicts_no_change_on_any_ring():
    X = np.arange(12.0).reshape(2, 6)
    assert not spatial.Persistence().fit(X, X).predict(X).any()


def test_frozen_feature_head_reads_neighbours_on_every_kth_state():
    train, _, _ = spatial.lorenz96_data(TINY, random_state=0)
    featurizer = spatial.conv_featurizer(TINY, 0).fit(train.X)
    per_site = len(featurizer.get_feature_names_out()) // TINY.n_sites
    assert per_site == 4 * 4 * 5  # n_hidden x every block x pseudo-times
    head = spatial.features_ridge(featurizer, 0, radius=2, stride=4)
    head.fit(train.X, train.y)
    pipeline = head.estimator_
    assert pipeline[-1].n_site_features_ == 5 * per_site  # the site and 2 + 2
    assert pipeline[-1].estimator_.n_samples_seen_ == -(-len(train.X) // 4) * 40
    shifted = np.roll(train.X[:3], 7, axis=1)
    np.testing.assert_allclose(
        head.predict(shifted), np.roll(head.predict(train.X[:3]), 7, axis=1),
        atol=1e-4,
    )


def test_two_processes_give_the_same_table_as_one_thread():
    # (seed, model) pairs in worker processes, each on one thread: the rows
    # of a one-process run on one thread, in the same order, to the bit
    # (the tiny ridge's penalty of 1e-14 would amplify the last bits of two
    # threads' sums into percents)
    models = ["persistence", "conv features + ridge", "conv from scratch"]
    parallel = spatial.spatial_surrogate_comparison(
        TINY, models=models, random_state=0, n_jobs=2
    )
    with threadpool_limits(1), _torch_threads(1):
        serial = spatial.spatial_surrogate_comparison(TINY, models=models,
                                                      random_state=0)
    assert list(parallel["model"]) == list(serial["model"])
    assert list(parallel["seed"]) == list(serial["seed"])
    for column in ("nrmse", "one_step", "vpt"):
        np.testing.assert_array_equal(parallel[column], serial[column],
                                      err_msg=column)


def test_command_line_runs_the_quick_preset_in_processes(table, monkeypatch, capsys):
    from skdiffusion.experiments import __main__ as cli

    calls = []

    def fake(preset, **kwargs):
        calls.append(kwargs)
        return table

    monkeypatch.setattr(spatial, "spatial_surrogate_comparison", fake)
    cli.main(["--experiment", "spatial", "--quiet", "--n-seeds", "2"])
    cli.main(["--experiment", "spatial", "--quiet", "--preset", "gpu"])
    cli.main(["--experiment", "spatial", "--quiet", "--n-jobs", "1"])
    assert [call["n_jobs"] for call in calls] == [-1, None, 1]
    assert "local RFF x4 + ridge" in capsys.readouterr().out
