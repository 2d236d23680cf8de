"""
A surrogate of a field on a ring: Lorenz 96 with per-site diffusion features
============================================================================

Lorenz 96 is a field of 40 values on a ring with the same dynamics at every
site. A surrogate of it can be one small model of a site and its
neighbourhood, shared by all sites. Here the convolutional
:class:`~skdiffusion.DiffusionFeaturizer` (``architecture="conv"``) learns
per-site features from states alone; :class:`~skdiffusion.PeriodicPatches`
hands each site the features of its neighbours too; a
:class:`~skdiffusion.SiteWiseRegressor` fits one ridge regression over all
(state, site) rows to predict each site's increment over 0.1 model time
units (MTU); and
:class:`~skdiffusion.SurrogateForecaster` rolls the model out. A local
random-features model (:class:`~skdiffusion.PeriodicPatches` + random
Fourier features + the same shared ridge) is the baseline.

The sizes are small so that the example runs in about a minute on two CPU
cores (the ridges read every other training state: the neighbourhoods'
features take most of the memory); the user guide's page on spatially
extended systems gives the numbers of longer runs, and ``python -m
skdiffusion.experiments --experiment spatial`` runs the full comparison
(three seeds, more models). There the frozen diffusion features read this
way forecast longer than local random features of the size used here, and
a convolutional network trained on the target
(:class:`~skdiffusion.ConvRegressor`) longer still; in a one-seed run,
local random features with four times the components (1,024) beat both.
"""

# %%
# Data: Lorenz 96 on 40 sites, one surrogate step = 0.1 MTU
# ---------------------------------------------------------
# RK4 with a step of 0.05 MTU, pairs two steps apart; states and increments
# are normalised by the climatological mean and standard deviation.
import matplotlib.pyplot as plt
import numpy as np
from sklearn.frozen import FrozenEstimator
from sklearn.pipeline import make_pipeline

from skdiffusion import (
    DiffusionFeaturizer,
    PeriodicPatches,
    RFFFeaturizer,
    SiteWiseRegressor,
    StreamingRidgeCV,
    SurrogateForecaster,
)
from skdiffusion.datasets import make_lorenz96
from skdiffusion.metrics import LYAPUNOV_EXPONENTS, nrmse, valid_prediction_time

train = make_lorenz96(4, 1_000, dt=0.05, lead_steps=2, random_state=0,
                      dtype=np.float32)
test = make_lorenz96(1, 400, dt=0.05, lead_steps=2, random_state=1,
                     dtype=np.float32)
print(train.X.shape, train.y.shape)

# %%
# The pipelines
# -------------
# The featurizer is fitted on the states alone (no targets), then frozen; its
# "conv" defaults give, for each site, the output of every residual block at
# five pseudo-times (32 channels x 3 blocks x 5 times = 480 features), and
# the head reads them at the site and at its two neighbours to each side.
featurizer = DiffusionFeaturizer(
    architecture="conv", max_iter=150, batch_size=256, learning_rate=3e-3,
    dtype="float32", random_state=0,
).fit(train.X)
diffusion = make_pipeline(
    FrozenEstimator(featurizer),
    PeriodicPatches(radius=2, n_site_features=32 * 3 * 5),
    SiteWiseRegressor(StreamingRidgeCV(standardize=True, random_state=0)),
)
local_rff = make_pipeline(
    PeriodicPatches(radius=4),
    SiteWiseRegressor(make_pipeline(
        RFFFeaturizer(256, wavelength=30.0, random_state=0),
        StreamingRidgeCV(standardize=True, random_state=0),
    )),
)
forecasters = {
    "conv diffusion features + ridge": SurrogateForecaster(diffusion, ring=True),
    "local RFF + ridge": SurrogateForecaster(local_rff, ring=True),
}
for forecaster in forecasters.values():
    forecaster.fit(train.X[::2], train.X[::2] + train.y[::2])

# %%
# Rollouts from test states
# -------------------------
# Sixteen rollouts of 40 steps (4 MTU); the valid prediction time (VPT) is
# the first lead at which a rollout's nRMSE exceeds 0.5 climatological
# standard deviations.
states = ((test.trajectories[0] - test.shift) / test.scale)[::2]
n_leads = 40
truth = np.stack([states[10 * i : 10 * i + n_leads + 1] for i in range(16)])
forecasts = {}
for name, forecaster in forecasters.items():
    forecasts[name] = forecaster.forecast(truth[:, 0], n_leads)
    vpt = valid_prediction_time(truth, forecasts[name], dt=0.1, std=1.0)
    one_step = nrmse(truth[:, 1], forecasts[name][:, 1], std=1.0)
    lyapunov = vpt * LYAPUNOV_EXPONENTS["lorenz96"]
    print(f"{name:<32} one-step nRMSE {one_step:.3f}, VPT {vpt:.1f} MTU "
          f"({lyapunov:.1f} Lyapunov times)")

# %%
# Hovmoeller plot: sites against time
# -----------------------------------
# The truth, the diffusion-feature surrogate's forecast and its error for the
# first rollout, and the local RFF's error; a dashed line marks each
# forecast's valid prediction time.
diffusion_forecast = forecasts["conv diffusion features + ridge"][0]
rff_forecast = forecasts["local RFF + ridge"][0]
panels = {
    "truth": (truth[0], None),
    "forecast (diffusion features)": (diffusion_forecast, diffusion_forecast),
    "error (diffusion features)": (diffusion_forecast - truth[0], diffusion_forecast),
    "error (local RFF)": (rff_forecast - truth[0], rff_forecast),
}
figure, axes = plt.subplots(1, 4, figsize=(16, 4), sharey=True)
extent = (0, 40, 0.1 * n_leads, 0)
for ax, (title, (field, forecast)) in zip(axes, panels.items(), strict=True):
    image = ax.imshow(field, aspect="auto", cmap="RdBu_r", vmin=-2.5, vmax=2.5,
                      extent=extent, interpolation="nearest")
    if forecast is not None:
        vpt = valid_prediction_time(truth[:1], forecast[None], dt=0.1, std=1.0)
        ax.axhline(vpt, color="black", linestyle="--", linewidth=1)
    ax.set(title=title, xlabel="site")
axes[0].set_ylabel("lead time (MTU)")
figure.colorbar(image, ax=axes, label="normalised state", shrink=0.8)
plt.show()
