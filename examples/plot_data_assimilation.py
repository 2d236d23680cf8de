"""
Data assimilation with ensembles from a diffusion model
=======================================================

A denoising diffusion model trained on Lorenz 1963 states turns one
deterministic forecast into an ensemble: noise the forecast to pseudo-time
``tau``, denoise it back, repeat (Finn et al., 2024). That ensemble gives
ensemble optimal interpolation (EnOI) a flow-dependent covariance at the
cost of one model forecast per cycle. This example runs the paper's twin
experiment (all three variables observed every 0.1 model time units with
error std 2, the perfect model between observations) with the package's
assimilation objects:

- :class:`~skdiffusion.assimilation.EnOI` with a
  :class:`~skdiffusion.assimilation.DiffusionEnsemble` (``tau`` tuned),
- :class:`~skdiffusion.assimilation.EnOI` with a
  :class:`~skdiffusion.assimilation.StaticCovarianceEnsemble` on the paper's
  full static covariance (inflation tuned),
- :class:`~skdiffusion.assimilation.ThreeDVar` with that covariance,
- the :class:`~skdiffusion.assimilation.ETKF` with 3 members, which runs
  three model forecasts per cycle.

Each method's free parameter is tuned with
:func:`~skdiffusion.assimilation.tune_twin_experiment` on training
trajectories, then scored by :func:`~skdiffusion.assimilation.run_twin_experiment`
on separately seeded test trajectories.

The sizes are small so that the script runs in under a minute on two CPU
cores: a network of half the paper's width trained for 300 steps, 20
members denoised on a 20-step grid, 150 scored cycles of 8 experiments. At
these sizes the diffusion ensemble does not beat the tuned static
covariance; :func:`skdiffusion.experiments.run_assimilation_experiment`
runs the full comparison (``"quick"`` preset: minutes on two cores;
``"paper"``: the paper's 50000 scored cycles, for a GPU), whose results
are discussed in the user guide (:ref:`assimilation`).
"""

# %%
# Train the diffusion model
# -------------------------
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from skdiffusion import DiffusionFeaturizer
from skdiffusion.assimilation import (
    ETKF,
    LORENZ63_B_FULL,
    DiffusionEnsemble,
    EnOI,
    StaticCovarianceEnsemble,
    ThreeDVar,
    run_twin_experiment,
    tune_twin_experiment,
)
from skdiffusion.datasets import LORENZ63_SCALE, LORENZ63_SHIFT, make_lorenz63

train = make_lorenz63(4, 2_500, random_state=0)
featurizer = DiffusionFeaturizer(n_hidden=128, max_iter=300, batch_size=512,
                                 random_state=0).fit(train.X)

# %%
# Tune on training trajectories
# -----------------------------
# Twin experiments need true trajectories in model units, one state every
# 0.01 MTU; observations come every 10 steps. The tuning truth is the four
# training trajectories, 200 cycles each (20 unscored): runs this long expose
# an ETKF whose inflation is too weak, which diverges now and then.
tuning_truth = train.trajectories[:, :2_000]
twin = {"n_burn_in": 20, "random_state": 0}
diffusion = DiffusionEnsemble(featurizer, n_members=20, n_steps=20,
                              shift=LORENZ63_SHIFT, scale=LORENZ63_SCALE)
inflations = [1.0, 2.0, 4.0, 8.0]
methods = {
    "diffusion EnOI": (EnOI(diffusion), {"sampler__tau": [50, 130, 250]}),
    "static full EnOI": (
        EnOI(StaticCovarianceEnsemble(LORENZ63_B_FULL, n_members=20)),
        {"sampler__inflation": inflations},
    ),
    "3D-Var": (ThreeDVar(LORENZ63_B_FULL), {"inflation": inflations}),
    "ETKF (3 members)": (ETKF(3), {"inflation": [1.0, 1.1, 1.2, 1.4]}),
}
searches = {
    name: tune_twin_experiment(method, grid, tuning_truth, **twin)
    for name, (method, grid) in methods.items()
}

# %%
# Score on test trajectories
# --------------------------
# RMSE and spread are normalised by the climatological scale of each
# variable (the climatology scores about 1); the observation error is 0.24
# in these units.
test_truth = make_lorenz63(8, 1_800, random_state=1).trajectories
rows = []
for name, search in searches.items():
    result = run_twin_experiment(search.best_method, test_truth, n_burn_in=20,
                                 n_cycles=150, random_state=1)
    ((parameter, value),) = search.best_params.items()
    rows.append({
        "method": name,
        "tuned": f"{parameter.removeprefix('sampler__')}={value}",
        "analysis RMSE": np.sqrt(np.mean(result.analysis_rmse**2)),
        "spread": np.sqrt(np.mean(result.analysis_spread**2)),
    })
print(pd.DataFrame(rows).to_string(index=False, float_format="{:.3f}".format))

# %%
# The spread grows with ``tau``
# -----------------------------
# Analysis RMSE and spread of the diffusion ensemble against ``tau`` on the
# tuning trajectories: a small ``tau`` barely moves the members away from the
# forecast, so EnOI trusts the forecast too much; the RMSE is lowest where the
# spread is of the size of the error.
sweep = searches["diffusion EnOI"].results
taus = [point["sampler__tau"] for point in sweep["params"]]
figure, ax = plt.subplots(figsize=(6, 4))
for key in ("analysis_rmse", "analysis_spread", "background_rmse"):
    ax.plot(taus, sweep[key], marker="o", label=key.replace("_", " "))
ax.axhline(searches["static full EnOI"].best_score, color="grey", ls="--",
           label="static full EnOI (tuned)")
ax.set(yscale="log", xlabel="diffusion pseudo-time tau",
       ylabel="normalised RMSE / spread")
ax.legend(fontsize="small")
figure.tight_layout()

# %%
# Ensembles around one forecast
# -----------------------------
# Both tuned samplers around one state of the attractor (x-z plane, model
# units): the diffusion members follow the attractor's local shape, the
# static ones form a Gaussian cloud of the same shape everywhere.
samplers = {
    "static full covariance": searches["static full EnOI"].best_method.sampler,
    "diffusion": searches["diffusion EnOI"].best_method.sampler,
}
trajectory = train.trajectories[0]
state = trajectory[1_234][None]
figure, ax = plt.subplots(figsize=(6, 4.5))
ax.plot(trajectory[:, 0], trajectory[:, 2], color="0.8", lw=0.5)
for (label, sampler), color in zip(samplers.items(), ("tab:orange", "tab:blue"),
                                   strict=True):
    members = sampler.sample_ensemble(state, random_state=0)[0]
    ax.scatter(members[:, 0], members[:, 2], s=14, alpha=0.7, color=color,
               label=label)
ax.scatter(state[0, 0], state[0, 2], marker="*", s=200, color="k", label="forecast")
ax.set(xlabel="x", ylabel="z", xlim=(state[0, 0] - 8, state[0, 0] + 8),
       ylim=(state[0, 2] - 8, state[0, 2] + 8))
ax.legend(loc="upper right", fontsize="small")
figure.tight_layout()
plt.show()

# %%
# What these sizes show
# ---------------------
# The ETKF, which runs three model forecasts per cycle, has the lowest error
# by far. The diffusion ensemble, built from the one forecast that EnOI
# runs, lands 7 % behind the tuned static full covariance and 11 % behind
# 3D-Var here: a network trained for 300 steps with 20 members on a 20-step
# grid does not reach the paper's result. The full experiment's quick preset
# (800 training steps, 50 members on a 100-step grid, 16 test experiments of
# 400 cycles) put diffusion EnOI 2.8 % ahead of the static full covariance;
# the README gives that run.
