"""Data assimilation with a diffusion-model ensemble, against static and ETKF baselines.

The paper's twin experiment on Lorenz 1963 (Finn et al., 2024, section 5): all
three variables observed every 0.1 MTU with error std 2, the perfect model
between observations, and seven ways to assimilate: EnOI with ensembles from
the diffusion model, EnOI with the paper's diagonal and full static
covariances, 3D-Var, the ETKF with 3 and 12 members, and the climatology as
the no-skill reference. Each method's free parameter is tuned with a
:class:`~sklearn.model_selection.ParameterGrid` on training trajectories; the
tuned methods are then scored on separately seeded test trajectories.
"""

import numpy as np

from ..assimilation import (
    ETKF,
    LORENZ63_B_DIAGONAL,
    LORENZ63_B_FULL,
    ClimatologyEnsemble,
    DiffusionEnsemble,
    EnOI,
    StaticCovarianceEnsemble,
    ThreeDVar,
    run_twin_experiment,
    tune_twin_experiment,
)
from ..datasets import LORENZ63_SCALE, LORENZ63_SHIFT, make_lorenz63
from ._common import (
    PAPER_FEATURIZER,
    Progress,
    make_table,
    output_path,
    records_to_columns,
    resolve_preset,
    seeds_from,
    table_columns,
    write_csv,
)

_STATIC_INFLATIONS = (1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0)
_ETKF_INFLATIONS = (1.0, 1.05, 1.1, 1.2, 1.3, 1.4, 1.6)

PRESETS = {
    # Minutes on 2 CPU cores, training a small featurizer included.
    "quick": dict(
        n_train_trajectories=8,
        n_train_steps=5_000,
        featurizer_params=dict(n_hidden=128, max_iter=800, batch_size=1024),
        n_members=50,
        n_steps=100,
        tau_grid=(30, 60, 90, 130, 180),
        static_inflations=_STATIC_INFLATIONS,
        etkf_inflations=_ETKF_INFLATIONS,
        n_tune_experiments=8,
        n_tune_burn_in=30,
        n_tune_cycles=200,
        n_test_experiments=16,
        n_test_burn_in=50,
        n_test_cycles=400,
    ),
    # The paper's sizes (a GPU for the featurizer and the diffusion ensembles):
    # 16 x 10^6 training states, tuning with 1000 burn-in and 5000 scored
    # cycles, scoring with 5000 burn-in and 50000 scored cycles.
    "paper": dict(
        n_train_trajectories=16,
        n_train_steps=1_000_000,
        featurizer_params=dict(PAPER_FEATURIZER, n_hidden=256),
        n_members=50,
        n_steps=100,
        tau_grid=tuple(range(50, 301, 10)),
        static_inflations=(1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 5.0, 6.0, 8.0),
        etkf_inflations=(1.0, 1.02, 1.05, 1.07, 1.1, 1.15, 1.2, 1.3, 1.34, 1.4, 1.5),
        n_tune_experiments=16,
        n_tune_burn_in=1_000,
        n_tune_cycles=5_000,
        n_test_experiments=16,
        n_test_burn_in=5_000,
        n_test_cycles=50_000,
    ),
}

OBS_EVERY = 10  # 0.1 MTU at dt = 0.01
OBS_ERROR_STD = 2.0  # model units


def _methods(featurizer, config):
    """(name, method, parameter grid) of every tuned method."""
    n_members = config["n_members"]
    static = {"sampler__inflation": list(config["static_inflations"])}
    etkf = {"inflation": list(config["etkf_inflations"])}
    diffusion = DiffusionEnsemble(
        featurizer,
        n_members=n_members,
        n_steps=config["n_steps"],
        method="ddpm",
        shift=LORENZ63_SHIFT,
        scale=LORENZ63_SCALE,
    )
    return [
        ("diffusion EnOI", EnOI(diffusion), {"sampler__tau": list(config["tau_grid"])}),
        (
            "static diagonal EnOI",
            EnOI(StaticCovarianceEnsemble(LORENZ63_B_DIAGONAL, n_members=n_members)),
            static,
        ),
        (
            "static full EnOI",
            EnOI(StaticCovarianceEnsemble(LORENZ63_B_FULL, n_members=n_members)),
            static,
        ),
        (
            "3D-Var",
            ThreeDVar(LORENZ63_B_FULL),
            {"inflation": static["sampler__inflation"]},
        ),
        ("ETKF (3)", ETKF(3), etkf),
        ("ETKF (12)", ETKF(12), etkf),
    ]


def _segments(trajectories, length, n_segments):
    """Cut long trajectories into ``n_segments`` pieces of ``length`` steps."""
    per_trajectory = trajectories.shape[1] // length
    if per_trajectory * trajectories.shape[0] < n_segments:
        raise ValueError(
            f"training trajectories of shape {trajectories.shape} hold fewer than "
            f"{n_segments} tuning experiments of {length} steps."
        )
    pieces = trajectories[:, : per_trajectory * length]
    pieces = pieces.reshape(-1, length, trajectories.shape[2])
    return pieces[:n_segments]


def _row(stage, name, params, scores, n_experiments):
    """One table row; every row has every column (NaN where not measured)."""
    ((parameter, value),) = params.items() if params else (("", np.nan),)
    row = dict(
        stage=stage,
        method=name,
        parameter=parameter.replace("sampler__", ""),
        value=float(value),
        n_experiments=n_experiments,
    )
    row.update({k: float(v) for k, v in scores.items()})
    row.setdefault("analysis_rmse_se", np.nan)
    return row


def _pooled(result):
    keys = ("analysis_rmse", "background_rmse", "analysis_spread", "background_spread")
    scores = {k: np.sqrt(np.mean(result[k] ** 2)) for k in keys}
    # Standard error of the per-experiment analysis RMSE across experiments.
    rmse = result["analysis_rmse"]
    scores["analysis_rmse_se"] = rmse.std(ddof=1) / np.sqrt(len(rmse))
    return scores


def _fit_featurizer(X, *, random_state=0, verbose=False, **params):
    """A DiffusionFeaturizer fitted on normalised states, quiet afterwards."""
    from ..featurizers import DiffusionFeaturizer

    featurizer = DiffusionFeaturizer(
        random_state=random_state, verbose=verbose, **params
    )
    # Quiet afterwards: the twin experiments sample once per cycle.
    return featurizer.fit(X).set_params(verbose=0)


def run_assimilation_experiment(
    preset="quick",
    *,
    featurizer=None,
    output_dir=None,
    plot=False,
    random_state=0,
    verbose=False,
    **overrides,
):
    """Compare diffusion-model EnOI with static EnOI, 3D-Var and the ETKF.

    Trains a diffusion model on Lorenz 1963 states (unless ``featurizer`` is
    given), tunes each method's free parameter on twin experiments on the
    training trajectories (``tau`` for the diffusion ensembles, the
    inflation otherwise) and scores the tuned methods on separately seeded
    test trajectories.

    Parameters
    ----------
    preset : {"quick", "paper"}, default="quick"
        ``"quick"`` runs in minutes on 2 CPU cores; ``"paper"`` has the
        paper's sizes and is meant for a GPU. See ``PRESETS``.
    featurizer : DiffusionFeaturizer, default=None
        A featurizer fitted on normalised Lorenz 1963 states; ``None`` trains
        one with the preset's ``featurizer_params``.
    output_dir : str or path-like, default=None
        If given, write ``assimilation.csv`` there (and, with ``plot``, the
        figures ``assimilation_tau.png`` and ``assimilation_ensemble.png``).
    plot : bool, default=False
        Draw the analysis RMSE and spread against ``tau`` (tuning stage) and
        ensembles around a forecast on the attractor; needs matplotlib. The
        figures are left open, so notebooks and sphinx-gallery show them.
    random_state : int, default=0
        Seeds the data, the training, the observations and the sampling.
    verbose : bool, default=False
        Report progress.
    **overrides
        Replace entries of the preset, e.g. ``n_test_cycles=100``.

    Returns
    -------
    table : pandas.DataFrame or dict of ndarray
        One row per method and stage: ``stage`` ("tuning" rows for every grid
        point, "test" rows for the tuned methods), ``method``, ``parameter``
        and its ``value``, ``n_experiments``, the pooled (root mean square
        over experiments) normalised ``analysis_rmse``, ``background_rmse``,
        ``analysis_spread``, ``background_spread``, and ``analysis_rmse_se``,
        the standard error of the per-experiment analysis RMSE. A dict of
        arrays with the same columns when pandas is not installed.

    See Also
    --------
    skdiffusion.assimilation.run_twin_experiment : One twin experiment.

    Notes
    -----
    Finn et al. (2024), section 5 and their public code: 50 members, DDPM
    on a 100-step grid, ``tau`` about 130; the static covariances are
    :data:`~skdiffusion.assimilation.LORENZ63_B_DIAGONAL` and
    :data:`~skdiffusion.assimilation.LORENZ63_B_FULL` in model units; 3D-Var
    uses the full one; tuning on training trajectories (1000 burn-in, 5000
    scored cycles), scoring on test trajectories (5000 burn-in, 50000 scored
    cycles).

    Examples
    --------
    >>> from skdiffusion.experiments.assimilation import run_assimilation_experiment
    >>> table = run_assimilation_experiment("quick")  # doctest: +SKIP
    """
    config = resolve_preset(PRESETS, preset, overrides)
    seed_train, seed_test, seed_fit, seed_obs = seeds_from(random_state, 4)
    say = Progress(verbose, "assimilation")

    train = make_lorenz63(
        config["n_train_trajectories"], config["n_train_steps"], random_state=seed_train
    )
    if featurizer is None:
        say(f"training the featurizer on {train.X.shape[0]} states")
        featurizer = _fit_featurizer(
            train.X,
            random_state=seed_fit,
            verbose=verbose,
            **config["featurizer_params"],
        )
    tune_length = OBS_EVERY * (config["n_tune_burn_in"] + config["n_tune_cycles"]) + 1
    tune_truth = _segments(
        train.trajectories, tune_length, config["n_tune_experiments"]
    )
    test_length = OBS_EVERY * (config["n_test_burn_in"] + config["n_test_cycles"]) + 1
    test_truth = make_lorenz63(
        config["n_test_experiments"], test_length, random_state=seed_test
    ).trajectories
    common = dict(
        obs_every=OBS_EVERY, obs_error_std=OBS_ERROR_STD, scale=LORENZ63_SCALE
    )

    rows, tuned = [], {}
    for name, method, grid in _methods(featurizer, config):
        say(f"tuning {name} over {grid}")
        search = tune_twin_experiment(
            method,
            grid,
            tune_truth,
            n_burn_in=config["n_tune_burn_in"],
            random_state=seed_obs,
            **common,
        )
        for i, params in enumerate(search.results["params"]):
            scores = {k: v[i] for k, v in search.results.items() if k != "params"}
            rows.append(_row("tuning", name, params, scores, len(tune_truth)))
        say(f"scoring {name} with {search.best_params}")
        result = run_twin_experiment(
            search.best_method,
            test_truth,
            n_burn_in=config["n_test_burn_in"],
            random_state=seed_obs + 1,
            verbose=verbose,
            **common,
        )
        rows.append(
            _row("test", name, search.best_params, _pooled(result), len(test_truth))
        )
        tuned[name] = search.best_method

    rows.append(_climatology_row(train.trajectories, test_truth, config, seed_obs))
    table = make_table(records_to_columns(rows))
    if output_dir is not None:
        write_csv(table, output_path(output_dir, "assimilation.csv"))
    if plot:
        figures = {
            "assimilation_tau.png": plot_tau_sweep(table),
            "assimilation_ensemble.png": plot_ensemble_around_forecast(
                tuned["diffusion EnOI"].sampler,
                tuned["static full EnOI"].sampler,
                test_truth[0],
                random_state=seed_obs,
            ),
        }
        if output_dir is not None:
            for filename, figure in figures.items():
                figure.savefig(output_path(output_dir, filename), dpi=120)
    say("done")
    return table


def _climatology_row(train_trajectories, test_truth, config, seed):
    """The no-skill reference: climatological members in place of an analysis."""
    n_burn_in = config["n_test_burn_in"]
    scored = test_truth[:, OBS_EVERY * (n_burn_in + 1) :: OBS_EVERY].reshape(-1, 3)
    sampler = ClimatologyEnsemble(
        train_trajectories.reshape(-1, 3), n_members=config["n_members"]
    )
    members = sampler.sample_ensemble(scored, random_state=seed)
    error = ((members.mean(axis=1) - scored) / LORENZ63_SCALE) ** 2
    variance = members.var(axis=1, ddof=1) / LORENZ63_SCALE**2
    rmse = np.sqrt(error.reshape(len(test_truth), -1).mean(axis=1))
    spread = np.sqrt(variance.reshape(len(test_truth), -1).mean(axis=1))
    scores = _pooled(
        dict(
            analysis_rmse=rmse,
            background_rmse=rmse,
            analysis_spread=spread,
            background_spread=spread,
        )
    )
    return _row("test", "climatology", {}, scores, len(test_truth))


def plot_tau_sweep(table, ax=None):
    """Analysis RMSE and ensemble spread of diffusion EnOI against ``tau``.

    Parameters
    ----------
    table : pandas.DataFrame or dict of ndarray
        The output of :func:`run_assimilation_experiment`.
    ax : matplotlib Axes, default=None
        Where to draw; a new figure when None.

    Returns
    -------
    figure : matplotlib Figure
        The figure, with the tuned static full EnOI's RMSE as a reference line.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4))
    columns = table_columns(table)
    tuning = columns["stage"] == "tuning"
    sweep = tuning & (columns["method"] == "diffusion EnOI")
    tau = columns["value"][sweep]
    order = np.argsort(tau)
    for key, label in (
        ("analysis_rmse", "analysis RMSE"),
        ("analysis_spread", "analysis spread"),
        ("background_spread", "ensemble (background) spread"),
    ):
        ax.plot(tau[order], columns[key][sweep][order], marker="o", label=label)
    static = tuning & (columns["method"] == "static full EnOI")
    if static.any():
        best = columns["analysis_rmse"][static].min()
        ax.axhline(best, color="grey", ls="--", label="static full EnOI (tuned)")
    ax.set_yscale("log")
    ax.set_xlabel("diffusion pseudo-time tau")
    ax.set_ylabel("normalised RMSE / spread")
    ax.set_title("Diffusion EnOI on the tuning trajectories")
    ax.legend()
    return ax.figure


def plot_ensemble_around_forecast(
    diffusion, static, trajectory, *, index=None, random_state=0
):
    """Ensembles around one state on the Lorenz 1963 attractor (x-z plane).

    The left panel shows the whole attractor, the right one zooms on the
    state: diffusion members follow the attractor, static ones form an
    ellipse.

    Parameters
    ----------
    diffusion, static : ensemble samplers
        Objects with ``sample_ensemble(X, *, random_state)``, e.g. a
        :class:`~skdiffusion.assimilation.DiffusionEnsemble` and a
        :class:`~skdiffusion.assimilation.StaticCovarianceEnsemble`.
    trajectory : ndarray of shape (n_time, 3)
        A trajectory in model units, drawn as the attractor.
    index : int, default=None
        The state to sample around (standing in for a forecast); the middle
        of the trajectory when None.
    random_state : int, default=0
        Seeds the samplers.

    Returns
    -------
    figure : matplotlib Figure
        The figure.
    """
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(10, 4.5))
    state = trajectory[len(trajectory) // 2 if index is None else index][None]
    samplers = (
        (static, "static covariance", "tab:orange"),
        (diffusion, "diffusion", "tab:blue"),
    )
    members = [
        s.sample_ensemble(state, random_state=random_state)[0] for s, _, _ in samplers
    ]
    for ax in axes:
        ax.plot(
            trajectory[:, 0], trajectory[:, 2], color="0.75", lw=0.5, label="attractor"
        )
        for ens, (sampler, label, color) in zip(members, samplers, strict=True):
            ax.scatter(
                ens[:, 0],
                ens[:, 2],
                s=12,
                color=color,
                alpha=0.7,
                label=f"{label} ({_describe(sampler)})",
            )
        ax.scatter(
            state[:, 0], state[:, 2], marker="*", s=200, color="k", label="forecast"
        )
        ax.set_xlabel("x")
        ax.set_ylabel("z")
    # Zoom on the members, with a margin.
    points = np.concatenate(members)
    reach = 1.2 * np.abs(points - state).max(axis=0)
    axes[1].set_xlim(state[0, 0] - reach[0], state[0, 0] + reach[0])
    axes[1].set_ylim(state[0, 2] - reach[2], state[0, 2] + reach[2])
    axes[1].legend(loc="upper right", fontsize="small")
    axes[0].set_title("Lorenz 1963 attractor")
    axes[1].set_title(f"{len(members[1])} members around one forecast")
    figure.tight_layout()
    return figure


def _describe(sampler):
    params = sampler.get_params(deep=False)
    if "tau" in params:
        return f"tau={params['tau']}"
    return f"inflation={params.get('inflation', 1.0):g}"
