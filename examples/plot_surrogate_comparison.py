"""
Surrogate models of Lorenz 63: diffusion features against baselines
===================================================================

Finn et al. (2024) reuse a denoising diffusion model trained on Lorenz 1963
states as a feature extractor: the output of its last residual block at a
few pseudo-times, with a ridge or shallow-network head, is a surrogate
model of the increment over 0.1 model time units (MTU). This example repeats
their comparison (Table 3) with :func:`~skdiffusion.experiments.surrogate_comparison`:
random Fourier and polynomial features with ridge, dense and residual
networks trained from scratch, transfer heads on the trained features, and
the same heads on an untrained network's features. Each model is rolled out
autoregressively for 10 MTU from held-out states, for several seeds; one
featurizer per seed is trained and shared, frozen, by all transfer models.

The ``"quick"`` preset (about 10^4 training pairs, a featurizer trained for
200 steps, networks for 20 epochs) runs in minutes on two CPU cores; it is
what ``make demo`` runs. The ``"paper"`` preset uses the paper's 1.6e7
training states and recipes and is meant for a GPU.
"""

# %%
# Run the comparison
# ------------------
from skdiffusion.experiments import (
    format_summary,
    plot_surrogate_comparison,
    summarize_surrogates,
    surrogate_comparison,
    transfer_vs_scratch,
)

table = surrogate_comparison("quick", verbose=True)

# %%
# The table of the paper
# ----------------------
# nRMSE in normalised units at lead times of 0.1 to 10 MTU, and the Hellinger
# distance between the climate of a long rollout and the true one; median
# and 5-95 % range over seeds. The ``truth`` row is the Hellinger distance
# that true trajectories sampled like the rollouts get: the floor set by
# the sample size.
summary = summarize_surrogates(table)
print(format_summary(summary))

# %%
# Error against lead time
# -----------------------
# Median over seeds, with the 5-95 % band. A curve stops where a rollout
# of some seed left the attractor.
figure = plot_surrogate_comparison(table)

# %%
# Transfer against from-scratch networks
# --------------------------------------
# The paper's claim: at 0.1 MTU, ridge or shallow heads on the diffusion
# features land within the seed spread of deep networks trained from
# scratch. Here it is checked on this run's numbers.
verdict = transfer_vs_scratch(summary)
low, high = verdict["scratch_range"]
print(f"from scratch at 0.1 MTU: {low:.2e} .. {high:.2e}")
for model, (median, within) in verdict["transfer"].items():
    print(f"{model:<27} {median:.2e}  {'within' if within else 'outside'}")
