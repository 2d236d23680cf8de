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
import matplotlib.pyplot as plt

from skdiffusion.experiments import scaling_studies

table = scaling_studies("quick", verbose=True)
print(table.pivot_table(index=["study", "value"], columns="model", values="nrmse"))

# %%
# Error against each variable
# ---------------------------
# The median over seeds of each model's nRMSE, one panel per study.
labels = {
    "n_pairs": "training pairs",
    "target_noise": "noise std on the targets (normalised units)",
    "lead_time": "lead time of the target (MTU)",
}
figure, axes = plt.subplots(1, 3, figsize=(13.5, 4))
for ax, (study, rows) in zip(axes, table.groupby("study", sort=False), strict=True):
    medians = rows.pivot_table(index="value", columns="model", values="nrmse")
    for model, curve in medians.items():
        style = {"color": "black", "linestyle": ":"} if model == "persistence" else {}
        ax.plot(curve.index, curve, marker="o", label=model, **style)
    ax.set(xscale="log", yscale="log", xlabel=labels[study])
    ax.set(ylabel="nRMSE of the increment")
    ax.grid(True, alpha=0.3)
axes[0].legend(fontsize="small")
figure.tight_layout()
