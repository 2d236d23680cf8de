"""The paper's experiments at a tiny size: structure and sanity of the numbers."""

import sys

import numpy as np
import pytest
import torch

from skdiffusion.experiments import __main__ as cli
from skdiffusion.experiments import (
    _common,
    format_summary,
    generation_quality,
    model_selection,
    scaling_studies,
    summarize_surrogates,
    surrogate_comparison,
    transfer_vs_scratch,
)
from skdiffusion.experiments import surrogate as surrogate_module
from skdiffusion.experiments.surrogate import MODELS

TINY_FEATURIZER = {"max_iter": 30, "n_hidden": 16, "batch_size": 256}
TINY_NETWORK = {"max_iter": 2, "batch_size": 64}

TINY_SURROGATES = dict(
    n_seeds=2,
    n_train_trajectories=2,
    n_train_steps=600,
    n_test_trajectories=2,
    n_test_steps=800,
    n_starts=8,
    n_leads=20,
    n_climate=4,
    climate_leads=20,
    width=16,
    network=TINY_NETWORK,
    head=TINY_NETWORK,
    featurizer=TINY_FEATURIZER,
)


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    # tiny networks on shared cores: one thread is faster than two
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def comparison(tmp_path_factory):
    output_dir = tmp_path_factory.mktemp("surrogates")
    table = surrogate_comparison(**TINY_SURROGATES, output_dir=output_dir)
    return table, output_dir


def _at(table, model, lead):
    rows = (table["model"] == model) & np.isclose(table["lead_time"], lead)
    return table.loc[rows, "nrmse"].to_numpy()


def test_surrogate_comparison_table_structure(comparison):
    table, output_dir = comparison
    n_rows_per_curve = TINY_SURROGATES["n_leads"] + 1
    # every model for every seed, plus the truth row, at every lead time
    assert len(table) == (1 + 2 * len(MODELS)) * n_rows_per_curve
    assert set(table["model"]) == {"truth", *MODELS}
    assert set(table["kind"]) == {
        "truth",
        "baseline",
        "scratch",
        "transfer",
        "untrained",
    }
    assert table.groupby("model")["seed"].nunique().drop("truth").eq(2).all()
    np.testing.assert_allclose(np.unique(table["lead_time"]), np.arange(21) * 0.1)
    for name in (
        "surrogate_comparison.csv",
        "surrogate_comparison.png",
        "surrogate_summary.csv",
    ):
        assert (output_dir / name).stat().st_size > 0


def test_surrogate_comparison_numbers_are_sane(comparison):
    table, _ = comparison
    forecasts = table[table["kind"] != "truth"]
    assert np.all(forecasts.loc[forecasts["lead_time"] == 0, "nrmse"] == 0)
    # one step never blows up: every model has a finite error at 0.1 MTU
    assert np.all(
        np.isfinite(forecasts.loc[np.isclose(forecasts["lead_time"], 0.1), "nrmse"])
    )
    assert table["hellinger"].between(0, 1).all()
    assert table["blown_up"].between(0, 1).all()
    # errors grow with lead time
    for model in ("RFF(1536)+ridge", "transfer(6 t)+ridge"):
        assert np.median(_at(table, model, 0.1)) < np.median(_at(table, model, 1.0))
    # trained diffusion features beat the untrained network's
    trained = _at(table, "transfer(6 t)+ridge", 0.1)
    untrained = _at(table, "untrained(6 t)+ridge", 0.1)
    assert np.max(trained) < np.min(untrained)


def test_surrogate_summary_and_claim(comparison):
    table, _ = comparison
    summary = summarize_surrogates(table)
    # leads of 5 and 10 MTU lie beyond these forecasts
    metrics = ["nrmse@0.1", "nrmse@1", "nrmse@2", "hellinger", "blown_up"]
    assert list(summary["metric"].unique()) == metrics
    assert len(summary) == (1 + len(MODELS)) * len(metrics)
    finite = summary.dropna(subset=["median"])
    assert (finite["q05"] <= finite["median"]).all()
    assert (finite["median"] <= finite["q95"]).all()
    text = format_summary(summary)
    assert "Median over 2 seeds" in text and "transfer(6 t)+ridge" in text
    verdict = transfer_vs_scratch(summary)
    low, high = verdict["scratch_range"]
    assert low <= high
    assert set(verdict["transfer"]) == {
        name for name, (kind, _, _) in MODELS.items() if kind == "transfer"
    }
    for median, within in verdict["transfer"].values():
        assert within == (low <= median <= high)


def test_main_prints_the_table(comparison, monkeypatch, capsys):
    table, _ = comparison
    monkeypatch.setattr(
        surrogate_module, "surrogate_comparison", lambda *args, **kwargs: table
    )
    cli.main(["--quiet"])
    out = capsys.readouterr().out
    assert "Median over 2 seeds" in out
    assert "From-scratch networks at 0.1 MTU" in out
    assert "Wall time" in out


def test_tables_without_pandas(comparison, monkeypatch, tmp_path):
    table, _ = comparison
    monkeypatch.setitem(sys.modules, "pandas", None)  # import pandas fails
    columns = _common.table_columns(table)
    as_dict = _common.make_table(columns)
    assert isinstance(as_dict, dict)
    summary = summarize_surrogates(as_dict)
    assert isinstance(summary, dict)
    assert "transfer(6 t)+ridge" in format_summary(summary)
    _common.write_csv(summary, tmp_path / "summary.csv")
    lines = (tmp_path / "summary.csv").read_text().splitlines()
    assert lines[0] == "model,kind,metric,median,q05,q95,n_seeds"
    assert len(lines) == 1 + len(summary["model"])


def test_generation_quality_tiny(tmp_path):
    table, samples = generation_quality(
        n_train_trajectories=2,
        n_train_steps=500,
        n_reference_steps=2_000,
        n_samples=300,
        n_sampling_steps=10,
        featurizer={"max_iter": 5, "n_hidden": 16, "batch_size": 128},
        return_samples=True,
        output_dir=tmp_path,
    )
    assert len(table) == 2 + 6
    assert set(table["parameterization"]) == {"-", "noise", "state", "velocity"}
    assert set(table["schedule"]) == {"-", "linear", "cosine"}
    references = table.set_index("model").loc[["reference trajectory", "Gaussian fit"]]
    assert np.isfinite(references.drop(columns=["fit_time"]).select_dtypes(float)).all(
        axis=None
    )
    # a second true trajectory is closer to the held-out one than a Gaussian
    true, gauss = references.itertuples()
    assert true.hellinger < gauss.hellinger
    assert true.nn_generated_to_reference < gauss.nn_generated_to_reference
    assert 0 <= true.extreme_fraction <= 0.1
    assert set(samples) == {"held-out trajectory", *table["model"]}
    assert all(s.shape == (300, 3) for s in samples.values())
    assert (tmp_path / "generation_quality.png").stat().st_size > 0


def test_scaling_studies_tiny(tmp_path):
    models = ("transfer(6 t)+ridge", "dense(2x256)", "RFF(256)+ridge")
    table = scaling_studies(
        n_train_trajectories=2,
        n_train_steps=600,
        n_test_trajectories=1,
        n_test_steps=600,
        n_test_pairs=200,
        n_pairs=(16, 1024),
        target_noise=(0.01, 1.0),
        lead_steps=(1, 20),
        n_updates=20,
        width=16,
        models=models,
        featurizer=TINY_FEATURIZER,
        output_dir=tmp_path,
    )
    assert len(table) == 6 * (1 + len(models))
    assert set(table["study"]) == {"n_pairs", "target_noise", "lead_time"}
    assert np.isfinite(table["nrmse"]).all()

    def nrmse(study, value, model):
        rows = table[(table["study"] == study) & np.isclose(table["value"], value)]
        return rows.loc[rows["model"] == model, "nrmse"].item()

    # more pairs help; noisier targets hurt; longer leads are harder
    assert nrmse("n_pairs", 1024, models[0]) < nrmse("n_pairs", 16, models[0])
    assert nrmse("target_noise", 0.01, models[0]) < nrmse(
        "target_noise", 1.0, models[0]
    )
    assert nrmse("lead_time", 0.01, "persistence") < nrmse(
        "lead_time", 0.2, "persistence"
    )
    # with enough clean pairs, trained features beat persistence
    assert nrmse("n_pairs", 1024, models[0]) < nrmse("n_pairs", 1024, "persistence")
    assert (tmp_path / "scaling.png").stat().st_size > 0


def test_model_selection_tiny(tmp_path):
    table = model_selection(
        n_trajectories=3,
        n_steps=400,
        n_splits=3,
        rff_components=64,
        width=16,
        head=TINY_NETWORK,
        featurizer={"max_iter": 5, "n_hidden": 16, "batch_size": 128},
        output_dir=tmp_path,
    )
    assert len(table) == 6  # 3 features x 2 heads
    assert list(table["rank"]) == sorted(table["rank"])
    assert np.all(np.diff(table["mean_nrmse"]) >= 0)  # best (lowest) first
    assert np.isfinite(table["mean_nrmse"]).all()
    assert set(table["features"]) == {
        "RFFFeaturizer(n_components=64)",
        "PolynomialFeatures(degree=4)",
        "DiffusionFeaturizer (frozen)",
    }
    assert {f"split{i}_nrmse" for i in range(3)} <= set(table.columns)
    assert (tmp_path / "model_selection.csv").exists()


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: surrogate_comparison("huge"), "preset must be one of"),
        (lambda: surrogate_comparison(n_trees=3), "Unknown setting"),
        (lambda: surrogate_comparison(models=["forest"]), "Unknown model"),
        (lambda: scaling_studies(studies=["depth"]), "Unknown studies or models"),
        (lambda: generation_quality("paper", colour="red"), "Unknown setting"),
    ],
)
def test_bad_arguments_raise_before_any_work(call, match):
    with pytest.raises(ValueError, match=match):
        call()
