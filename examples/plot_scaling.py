"""
How surrogate skill scales: data, noisy targets and lead time
=============================================================

Pre-training pays off when labelled data are scarce: the diffusion
featurizer learns from states alone, and only its ridge head needs
(state, increment) pairs. :func:`~skdiffusion.experiments.scaling_studies`
measures the one-step error of transfer + ridge, a dense network trained
from scratch and random Fourier features + ridge

- against the number of training pairs (the featurizer pre-trained on all
  states),
- against Gaussian noise added to the training targets, and
- against the lead time of the target.

The "persistence" line (predict no change) gives the size of the target.
The ``"quick"`` preset runs a few values of each in minutes on two CPU
cores; ``"paper"`` spans the paper's ranges on a GPU.
"""

# %%
# Run the three studies
# ---------------------
from skdiffusion.experiments import plot_scaling, scaling_studies

table = scaling_studies("quick", verbose=True)
print(table.pivot_table(index=["study", "value"], columns="model", values="nrmse"))

# %%
# Error against each variable
# ---------------------------
figure = plot_scaling(table)
