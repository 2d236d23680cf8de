"""
Data assimilation with ensembles from a diffusion model
=======================================================

A denoising diffusion model trained on Lorenz 1963 states turns one
deterministic forecast into an ensemble: noise the forecast to pseudo-time
``tau``, denoise it back, repeat (Finn et al., 2024). Here that ensemble drives
ensemble optimal interpolation (EnOI) in the paper's twin experiment: all three
variables observed every 0.1 model time units with error std 2, the perfect
model between observations. It is compared with EnOI on the paper's static
diagonal and full covariances, 3D-Var, the ETKF with 3 and 12 members (which
run an ensemble of model forecasts), and the climatology.

Every method's free parameter (``tau``, or an inflation) is tuned with a
:class:`~sklearn.model_selection.ParameterGrid` on twin experiments on the
training trajectories, then scored on separately seeded test trajectories.
The ``"quick"`` preset trains a small diffusion model for about a minute and
runs short experiments: a few minutes on two CPU cores.
"""

# %%
# Run the experiment
# ------------------
from skdiffusion.experiments import run_assimilation_experiment

table = run_assimilation_experiment("quick", plot=True, verbose=True)

# %%
# Analysis RMSE and spread on the test trajectories
# -------------------------------------------------
# Errors and spreads are normalised by the climatological scale of each
# variable (the climatology scores about 1), the observation error is 0.24 in
# these units, and ``analysis_rmse_se`` is the standard error over the
# independent experiments.
columns = ["method", "parameter", "value", "analysis_rmse", "analysis_rmse_se",
           "analysis_spread", "background_rmse"]
test = table[table.stage == "test"][columns]
print(test.round(4).to_string(index=False))

# %%
# Does the diffusion ensemble beat the static covariances?
# --------------------------------------------------------
rmse = dict(zip(test.method, test.analysis_rmse, strict=True))
for baseline in ("static full EnOI", "static diagonal EnOI", "3D-Var"):
    change = rmse["diffusion EnOI"] / rmse[baseline] - 1
    print(f"diffusion EnOI vs {baseline}: {change:+.1%} analysis RMSE")

# %%
# Measured once with this script (``random_state=0``, 16 test experiments of
# 400 scored cycles), diffusion-EnOI with the tuned ``tau = 130`` scored an
# analysis RMSE of 0.1350, against 0.1381 for the tuned full-covariance EnOI
# (2.2 % lower) and 0.1593 for the diagonal one (15 % lower); 3D-Var, which
# uses the full covariance without sampling noise, scored 0.1345, a tie.
# Every method sees the same truths and observations, so the comparison is
# paired: against the full-covariance EnOI, the diffusion ensemble won in 13
# of the 16 experiments (RMSE ratio 0.978 +- 0.006); against 3D-Var in 7
# (ratio 1.004 +- 0.005). So the quick preset reproduces the paper's
# ordering against static EnOI, by a small margin: its network is trained
# for 800 steps only. The paper's claim
# is checked at the ``"paper"`` preset (the paper's network, training and
# 50000 scored cycles, meant for a GPU). The ETKF, which propagates 3 or 12
# model runs instead of one, is better than every EnOI (0.091 and 0.075).
#
# The first figure shows the analysis RMSE and the spread of the diffusion
# ensemble against ``tau`` on the tuning trajectories: the spread grows with
# ``tau`` (at ``tau = 0`` every member is the forecast, and EnOI ignores the
# observations), and the RMSE is lowest where the spread is close to the
# forecast error. The second shows both kinds of ensemble around one
# forecast: the diffusion members are pulled towards the attractor, the
# static ones form a Gaussian cloud.
