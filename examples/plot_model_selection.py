"""
Choosing features and head by cross-validation
==============================================

Every piece of a surrogate is a scikit-learn estimator, so the choice of
features and head is an ordinary grid search.
:func:`~skdiffusion.experiments.model_selection` wraps
``Pipeline([features, head])`` in a
:class:`~skdiffusion.surrogate.SurrogateForecaster` and searches random
Fourier, polynomial and (pre-trained, frozen) diffusion features against a
ridge head on standardised features and a one-hidden-layer head with
:class:`~sklearn.model_selection.GridSearchCV`.

Consecutive Lorenz 63 states are nearly identical, so a random K-fold split
would validate on states next to training ones.
:class:`~sklearn.model_selection.GroupKFold` over trajectories keeps each
validation trajectory unseen. The score is the one-step nRMSE
(:func:`skdiffusion.metrics.make_nrmse_scorer`).
"""

# %%
# The search and its ``cv_results_``
# ----------------------------------
from skdiffusion.experiments import model_selection

table = model_selection("quick", verbose=True)
print(table[["features", "head", "mean_nrmse", "std_nrmse", "rank", "mean_fit_time"]])

# %%
# The search itself
# -----------------
# :func:`skdiffusion.experiments.make_search` builds the
# :class:`~sklearn.model_selection.GridSearchCV` around a pipeline with a
# ``memory`` cache, so that each fold's features are computed once for both
# heads; fit it on your own states ``X``, next states ``Y`` and trajectory
# ``groups`` to search other grids.
