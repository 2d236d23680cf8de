"""The paper's experiments at a tiny size: tables, summaries, sane numbers."""

import dataclasses

import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from skdiffusion.experiments import (
    AssimilationPreset,
    GenerationPreset,
    ScalingPreset,
    SelectionPreset,
    SurrogatePreset,
    format_summary,
    generation_quality,
    model_selection,
    run_assimilation_experiment,
    scaling_studies,
    summarize_surrogates,
    surrogate_comparison,
    transfer_vs_scratch,
)
from skdiffusion.experiments import __main__ as cli
from skdiffusion.experiments import surrogate as surrogate_module
from skdiffusion.experiments.surrogate import MODELS

TINY_FEATURIZER = {"max_iter": 30, "n_hidden": 16, "batch_size": 256}
TINY_NETWORK = {"max_iter": 20, "batch_size": 64}
TINY_SURROGATES = SurrogatePreset(
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
def _one_thread(one_torch_thread):
    """torch on one thread for this module (the fixture is in conftest)."""


@pytest.fixture(scope="module")
def comparison(tmp_path_factory):
    output_dir = tmp_path_factory.mktemp("surrogates")
    return surrogate_comparison(TINY_SURROGATES, output_dir=output_dir), output_dir


def _at(table, model, lead):
    rows = (table["model"] == model) & np.isclose(table["lead_time"], lead)
    return table.loc[rows, "nrmse"].to_numpy()


def test_surrogate_comparison_is_a_tidy_table(comparison):
    table, output_dir = comparison
    # every model for every seed, plus the truth, at every lead 0 .. 20
    assert len(table) == (1 + 2 * len(MODELS)) * 21
    assert list(table.columns) == [
        "model",
        "kind",
        "seed",
        "lead_time",
        "nrmse",
        "vpt",
        "hellinger",
        "blown_up",
        "fit_time",
        "pretrain_time",
        "alpha",
    ]
    assert set(table["model"]) == {"truth", *MODELS}
    # both penalties of every ridge model: the paper's, and a held-out choice
    alpha = table.groupby("model")["alpha"].unique()
    for model in MODELS:
        if model.endswith("+ridge"):
            assert list(alpha[model]) == [TINY_SURROGATES.ridge_alpha]
            assert f"{model}CV" in MODELS
        elif model.endswith("+ridgeCV"):
            assert set(alpha[model]) <= set(surrogate_module.RIDGE_ALPHAS)
        else:
            assert np.isnan(alpha[model]).all()
    assert table.groupby("model")["seed"].nunique().drop("truth").eq(2).all()
    np.testing.assert_allclose(np.unique(table["lead_time"]), np.arange(21) * 0.1)
    pretrained = table["kind"].isin(["transfer", "untrained"])
    assert table.loc[pretrained, "pretrain_time"].gt(0).all()
    assert table.loc[~pretrained, "pretrain_time"].isna().all()
    written = pd.read_csv(output_dir / "surrogate_comparison.csv")
    assert written.shape == table.shape
    for name in ("surrogate_comparison.png", "surrogate_summary.csv"):
        assert (output_dir / name).stat().st_size > 0


def test_surrogate_comparison_in_two_processes_gives_the_same_table(comparison):
    # (seed, model) pairs fitted in worker processes, each on one thread (as
    # this module's torch): the same numbers, in the same order
    names = ["RFF(256)+ridgeCV", "dense(1x256)", "transfer(t=400)+ridge"]
    parallel = surrogate_comparison(TINY_SURROGATES, models=names, n_jobs=2)
    serial = comparison[0][comparison[0]["model"].isin(["truth", *names])]
    columns = ["model", "seed", "lead_time"]
    assert_frame_equal(parallel[columns], serial[columns].reset_index(drop=True))
    for column in ("nrmse", "vpt", "hellinger", "blown_up", "alpha"):
        np.testing.assert_allclose(
            parallel[column], serial[column], rtol=1e-9, err_msg=column
        )


def test_surrogate_comparison_numbers_are_sane(comparison):
    table, _ = comparison
    forecasts = table[table["kind"] != "truth"]
    assert (forecasts.loc[forecasts["lead_time"] == 0, "nrmse"] == 0).all()
    # one step never blows up: every model has a finite error at 0.1 MTU
    at_one_step = forecasts[np.isclose(forecasts["lead_time"], 0.1)]
    assert np.isfinite(at_one_step["nrmse"]).all()
    assert table["hellinger"].between(0, 1).all()
    assert table["blown_up"].between(0, 1).all()
    # a valid prediction time lies within the 2 MTU rollouts, longer for RFF
    # than for the untrained network
    assert forecasts["vpt"].between(0, 2.0).all()
    vpt = forecasts.groupby("model")["vpt"].median()
    assert vpt["RFF(1536)+ridge"] > vpt["untrained(6 t)+ridge"]
    for model in ("RFF(1536)+ridge", "transfer(6 t)+ridge"):
        assert np.median(_at(table, model, 0.1)) < np.median(_at(table, model, 1.0))
    # trained diffusion features beat the untrained network's
    trained = _at(table, "transfer(6 t)+ridge", 0.1)
    assert trained.max() < _at(table, "untrained(6 t)+ridge", 0.1).min()


def test_transfer_models_read_their_own_pseudo_times():
    X = np.random.default_rng(0).normal(size=(64, 3))
    featurizers = surrogate_module.fit_featurizers(X, TINY_SURROGATES, seed=0)
    for name, n_times in [("transfer(6 t)+ridge", 6), ("transfer(t=400)+ridge", 1)]:
        ridge = MODELS[name][1](TINY_SURROGATES, 0, featurizers)
        assert ridge.transformer.transform(X).shape == (64, 16 * n_times)
    shallow = MODELS["transfer(t=0,400)+shallow"][1](TINY_SURROGATES, 0, featurizers)
    assert shallow[0].transform(X).shape == (64, 32)
    # the shared featurizer itself is left as it was fitted
    assert featurizers["transfer"].transform(X).shape == (64, 96)


def test_summary_of_a_known_table():
    curves = {"a": [[0, 1, 2], [0, 2, 4], [0, 3, np.nan]], "b": [[0, 5, 6]] * 3}
    table = pd.concat(
        pd.DataFrame(
            {
                "model": model,
                "kind": "scratch" if model == "a" else "transfer",
                "seed": seed,
                "lead_time": [0.0, 0.1, 0.2],
                "nrmse": curve,
                "vpt": 0.1 * (seed + 1),
                "hellinger": 0.1 * seed,
                "blown_up": float(np.isnan(curve).any()),
            }
        )
        for model, model_curves in curves.items()
        for seed, curve in enumerate(model_curves)
    )
    summary = summarize_surrogates(table, lead_times=(0.1, 0.2, 5.0))
    assert list(summary["metric"].unique()) == [
        "nrmse@0.1",
        "nrmse@0.2",
        "vpt",
        "hellinger",
        "blown_up",
    ]
    a = summary[summary["model"] == "a"].set_index("metric")
    assert a.loc["nrmse@0.1", "median"] == 2
    np.testing.assert_allclose(a.loc["nrmse@0.1", ["q05", "q95"]], [1.1, 2.9])
    assert np.isnan(a.loc["nrmse@0.2", "median"])  # a seed blew up
    np.testing.assert_allclose(a.loc["blown_up", "median"], 0)
    np.testing.assert_allclose(a.loc["vpt", "median"], 0.2)
    text = format_summary(summary)
    assert "Median over 3 seeds" in text and "blew up" in text
    verdict = transfer_vs_scratch(summary)
    np.testing.assert_allclose(verdict["scratch_range"], (1.1, 2.9))
    assert verdict["transfer"] == {"b": (5.0, False)}


def test_main_prints_the_table(comparison, monkeypatch, capsys):
    table, _ = comparison
    calls = []

    def fake(*args, **kwargs):
        calls.append(kwargs)
        return table

    monkeypatch.setattr(surrogate_module, "surrogate_comparison", fake)
    cli.main(["--quiet", "--n-seeds", "2"])
    cli.main(["--quiet", "--n-seeds", "2", "--n-jobs", "1"])
    # the quick preset uses every core unless told otherwise
    assert [call["n_jobs"] for call in calls] == [-1, 1]
    out = capsys.readouterr().out
    assert "Median over 2 seeds" in out
    assert "transfer(6 t)+ridge" in out
    assert "From-scratch networks at 0.1 MTU" in out
    assert "Ridge penalties per seed" in out
    assert "RFF(1536)+ridgeCV" in out
    assert "Wall time" in out


def test_main_prints_the_paper_plan_before_the_run(
    comparison, unit_probe, monkeypatch, capsys
):
    table, _ = comparison
    printed = []

    def fake(preset, **kwargs):
        printed.append(capsys.readouterr().out)  # what came before the run
        return table

    monkeypatch.setattr(surrogate_module, "surrogate_comparison", fake)
    cli.main(["--quiet", "--preset", "paper"])
    assert "Surrogate comparison, paper preset" in printed[0]
    assert "Every stage fits in 16 GB" in printed[0]
    cli.main(["--quiet"])  # the quick preset starts at once
    assert "Surrogate comparison" not in printed[1]
    cli.main(["--quiet", "--preset", "paper", "--dry-run"])
    assert len(printed) == 2  # planned, not run


@pytest.mark.parametrize(
    "experiment, title, stage",
    [
        ("surrogate", "Surrogate comparison", "ridge head: RFF(1536)+ridge"),
        ("selection", "Model selection", "shallow head on diffusion(6 t) (streamed)"),
        ("scaling", "Scaling studies", "dense(2x256)"),
        ("generation", "Generation quality", "sampling: 100 steps of ddpm"),
        ("assimilation", "Lorenz 63 data assimilation", "ETKF (12): 11 tuned"),
    ],
)
def test_dry_run_plans_every_lorenz63_experiment(
    experiment, title, stage, unit_probe, capsys
):
    cli.main(["--experiment", experiment, "--preset", "paper", "--dry-run"])
    out = capsys.readouterr().out
    assert f"{title}, paper preset: the stages" in out
    assert stage in out
    assert "Every stage fits in 16 GB." in out


def test_dry_run_of_an_experiment_without_a_plan_is_refused(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--experiment", "spatial", "--dry-run"])
    assert "--dry-run plans the surrogate, selection" in capsys.readouterr().err


@pytest.mark.parametrize(
    "experiment, function, shown",
    [
        ("selection", "model_selection", "mean_nrmse"),
        ("scaling", "scaling_studies", "n_pairs"),
        ("generation", "generation_quality", "hellinger"),
        ("assimilation", "run_assimilation_experiment", "analysis_rmse"),
    ],
)
def test_main_runs_the_other_experiments(experiment, function, shown, monkeypatch,
                                         capsys):
    import importlib

    tables = {
        "selection": pd.DataFrame({"features": ["RFF"], "head": ["ridge"],
                                   "mean_nrmse": [0.1], "std_nrmse": [0.01],
                                   "mean_fit_time": [1.0]}),
        "scaling": pd.DataFrame({"study": ["n_pairs"] * 2, "value": [16, 16],
                                 "model": ["a", "a"], "seed": [0, 1],
                                 "nrmse": [0.1, 0.3]}),
        "generation": pd.DataFrame({"model": ["a", "a"], "seed": [0, 1],
                                    "hellinger": [0.1, 0.3]}),
        "assimilation": pd.DataFrame({"stage": ["tuning", "test"],
                                      "method": ["3D-Var", "3D-Var"],
                                      "analysis_rmse": [0.5, 0.4]}),
    }
    calls = []

    def fake(preset, **kwargs):
        calls.append(kwargs)
        return tables[experiment]

    module = importlib.import_module(f"skdiffusion.experiments.{experiment}")
    monkeypatch.setattr(module, function, fake)
    cli.main(["--experiment", experiment, "--quiet"])
    out = capsys.readouterr().out
    assert shown in out and "quick preset" in out
    if experiment in ("scaling", "generation"):
        assert "0.2" in out  # the median of the two seeds
    if experiment == "assimilation":
        assert "tuning" not in out and "0.4" in out
    assert calls[0]["verbose"] is False


def test_generation_quality_tiny():
    preset = GenerationPreset(
        n_train_trajectories=2,
        n_train_steps=500,
        n_test_steps=2_000,
        n_samples=300,
        n_sampling_steps=10,
        featurizer={"max_iter": 5, "n_hidden": 16, "batch_size": 128},
    )
    table, samples = generation_quality(preset, return_samples=True)
    assert len(table) == 2 + 6
    assert set(table["parameterization"]) == {"-", "noise", "state", "velocity"}
    assert table["fit_time"].iloc[2:].gt(0).all()
    references = table.set_index("model").loc[["reference trajectory", "Gaussian fit"]]
    true, gauss = references.itertuples()
    # a second true trajectory is closer to the held-out one than a Gaussian
    assert true.hellinger < gauss.hellinger
    assert true.nn_generated_to_reference < gauss.nn_generated_to_reference
    assert 0 <= true.extreme_fraction <= 0.1
    assert set(samples) == {"held-out trajectory", *table["model"]}
    assert all(s.shape == (300, 3) for s in samples.values())


def test_scaling_studies_tiny(tmp_path):
    models = ("transfer(6 t)+ridge", "dense(2x256)", "RFF(256)+ridge")
    preset = ScalingPreset(
        n_train_trajectories=2,
        n_train_steps=600,
        n_test_trajectories=1,
        n_test_steps=600,
        n_test_pairs=200,
        n_pairs=(16, 1024),
        target_noise=(0.01, 1.0),
        lead_steps=(1, 20),
        max_iter=20,
        width=16,
        featurizer=TINY_FEATURIZER,
    )
    table = scaling_studies(preset, models=models, output_dir=tmp_path)
    assert len(table) == 6 * (1 + len(models))
    assert list(table.columns) == [
        "study",
        "value",
        "model",
        "seed",
        "nrmse",
        "fit_time",
    ]
    assert np.isfinite(table["nrmse"]).all()
    nrmse = table.set_index(["study", "value", "model"])["nrmse"]
    first = models[0]
    assert nrmse["n_pairs", 1024, first] < nrmse["n_pairs", 16, first]
    assert nrmse["target_noise", 0.01, first] < nrmse["target_noise", 1.0, first]
    assert (
        nrmse["lead_time", 0.01, "persistence"] < nrmse["lead_time", 0.2, "persistence"]
    )
    assert nrmse["n_pairs", 1024, first] < nrmse["n_pairs", 1024, "persistence"]
    assert (tmp_path / "scaling.csv").exists()


@pytest.mark.parametrize("stream_heads", [False, True])
def test_scaling_studies_fit_shallow_heads(stream_heads):
    preset = ScalingPreset(
        n_train_trajectories=2, n_train_steps=600, n_test_trajectories=1,
        n_test_steps=600, n_test_pairs=200, n_pairs=(64,), max_iter=5, width=16,
        featurizer=TINY_FEATURIZER, stream_heads=stream_heads,
    )
    models = ("transfer(t=0,400)+shallow",)
    table = scaling_studies(preset, studies=("n_pairs",), models=models)
    assert list(table["model"]) == ["persistence", *models]
    assert np.isfinite(table["nrmse"]).all()


TINY_SELECTION = SelectionPreset(
    n_trajectories=3,
    n_steps=400,
    n_splits=3,
    rff_components=64,
    width=16,
    head=TINY_NETWORK,
    featurizer={"max_iter": 5, "n_hidden": 16, "batch_size": 128},
)


def test_model_selection_tiny():
    preset = TINY_SELECTION
    table = model_selection(preset)
    assert len(table) == 6  # 3 features x 2 heads
    assert list(table["rank"]) == sorted(table["rank"])
    assert np.all(np.diff(table["mean_nrmse"]) >= 0)  # best (lowest) first
    assert (table["mean_nrmse"] > 0).all()
    assert set(table["features"]) == {
        "RFFFeaturizer",
        "PolynomialFeatures",
        "DiffusionFeaturizer (frozen)",
    }
    assert set(table["head"]) == {"StreamingRidge", "DenseRegressor"}
    assert {f"split{i}_nrmse" for i in range(3)} <= set(table.columns)


def test_model_selection_streamed_heads_score_the_same_models():
    preset = TINY_SELECTION
    cached = model_selection(preset).set_index(["features", "head"])
    streamed = model_selection(dataclasses.replace(preset, stream_heads=True))
    assert set(streamed["head"]) == {"StreamingRidge", "ShallowHeadRegressor"}
    streamed = streamed.replace({"head": {"ShallowHeadRegressor": "DenseRegressor"}})
    streamed = streamed.set_index(["features", "head"]).loc[cached.index]
    # the same six models (measured: within 1e-8; the streamed shallow
    # heads' transformers read float32 states)
    np.testing.assert_allclose(streamed["mean_nrmse"], cached["mean_nrmse"], rtol=1e-6)


def test_assimilation_tiny():
    preset = AssimilationPreset(
        n_train_trajectories=2,
        n_train_steps=2_000,
        featurizer={"max_iter": 5, "n_hidden": 16, "batch_size": 128},
        n_members=10,
        n_steps=5,
        tau_grid=(30, 130),
        static_inflations=(1.0, 4.0),
        etkf_inflations=(1.0, 1.2),
        n_tune_experiments=2,
        n_tune_burn_in=5,
        n_tune_cycles=10,
        n_test_experiments=2,
        n_test_burn_in=5,
        n_test_cycles=10,
    )
    table = run_assimilation_experiment(preset)
    test = table[table["stage"] == "test"].set_index("method")
    assert len(table) == 6 * 2 + 7
    assert list(test.index) == [
        "diffusion EnOI",
        "static diagonal EnOI",
        "static full EnOI",
        "3D-Var",
        "ETKF (3)",
        "ETKF (12)",
        "climatology",
    ]
    assert test.loc["diffusion EnOI", "parameter"] == "tau"
    assert test.loc["diffusion EnOI", "value"] in (30, 130)
    # any method that assimilates beats the climatology by far
    assert (test["analysis_rmse"].drop("climatology") < 0.5).all()
    assert 0.8 < test.loc["climatology", "analysis_rmse"] < 1.3
    assert test["analysis_rmse_se"].gt(0).all()


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: surrogate_comparison("huge"), ValueError, "Unknown preset"),
        (lambda: surrogate_comparison(models=["forest"]), ValueError, "Unknown model"),
        (lambda: scaling_studies(studies=["depth"]), ValueError, "Unknown studies"),
        (lambda: SurrogatePreset(n_climate=200), ValueError, "n_climate <= n_starts"),
        (lambda: SurrogatePreset(n_trees=3), TypeError, "n_trees"),
        (
            lambda: dataclasses.replace(GenerationPreset(), colour="red"),
            TypeError,
            "colour",
        ),
    ],
)
def test_bad_arguments_raise_before_any_work(call, error, match):
    with pytest.raises(error, match=match):
        call()
