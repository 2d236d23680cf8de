"""Model selection: cross-validate features x heads with GroupKFold."""

import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.frozen import FrozenEstimator
from sklearn.model_selection import GridSearchCV, GroupKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import PolynomialFeatures

from ..datasets import make_lorenz63
from ._common import (
    PAPER_FEATURIZER,
    Progress,
    make_table,
    resolve_preset,
    save_outputs,
    seeds_from,
)

PRESETS = {
    # A few minutes on two CPU cores.
    "quick": {
        "n_trajectories": 4,
        "n_steps": 2_000,
        "n_splits": 4,
        "rff_components": 1536,
        "ridge_alpha": 1e-4,
        "width": 256,
        "head": {"learning_rate": 3e-4, "batch_size": 256, "max_iter": 10},
        "featurizer": {"max_iter": 300, "batch_size": 1024},
    },
    # The paper's training recipes on 2^20 states (the features of each
    # fold are held in memory: 6.4 GB for 1536 diffusion features), for a GPU.
    "paper": {
        "n_trajectories": 16,
        "n_steps": 65_536 + 10,
        "n_splits": 4,
        "rff_components": 1536,
        "ridge_alpha": 1e-4,
        "width": 256,
        "head": {"learning_rate": 5e-5, "batch_size": 16_384, "max_iter": 100},
        "featurizer": dict(PAPER_FEATURIZER),
    },
}


def make_search(settings, featurizer, *, random_state=0, n_jobs=None, verbose=0):
    """The grid search: features x heads of a surrogate, GroupKFold over trajectories.

    Parameters
    ----------
    settings : dict
        ``n_splits``, ``rff_components``, ``ridge_alpha``, ``width`` and
        ``head`` (see ``PRESETS``).
    featurizer : DiffusionFeaturizer
        A featurizer fitted on unlabeled states; it enters the grid frozen,
        so the search never retrains it.
    random_state : int, default=0
        Seeds the random features and the network heads.
    n_jobs : int or None, default=None
        Passed to :class:`~sklearn.model_selection.GridSearchCV`.
    verbose : int, default=0
        Passed to :class:`~sklearn.model_selection.GridSearchCV`.

    Returns
    -------
    search : GridSearchCV
        Unfitted; fit it with ``(X, next_states, groups=groups)``.
    """
    from .. import DenseRegressor, RFFFeaturizer
    from ..linear_model import StreamingRidge
    from ..metrics import make_nrmse_scorer
    from ..surrogate import SurrogateForecaster

    # both heads standardise their inputs themselves; the ridge head works
    # in float64 whatever the features' dtype (alpha is tiny)
    ridge = StreamingRidge(settings["ridge_alpha"], standardize=True)
    pipeline = Pipeline([("features", "passthrough"), ("head", ridge)])
    grid = {
        "regressor__features": [
            RFFFeaturizer(settings["rff_components"], random_state=random_state),
            PolynomialFeatures(4, include_bias=False),
            FrozenEstimator(featurizer),
        ],
        "regressor__head": [
            ridge,
            DenseRegressor(
                (settings["width"],),
                random_state=random_state,
                n_iter_no_change=10**9,
                tol=0.0,
                **settings["head"],
            ),
        ],
    }
    return GridSearchCV(
        SurrogateForecaster(pipeline),
        grid,
        # next-state nRMSE in normalised units = that of the increment
        scoring=make_nrmse_scorer(std=1.0),
        cv=GroupKFold(n_splits=settings["n_splits"]),
        n_jobs=n_jobs,
        verbose=verbose,
    )


def _label(estimator):
    """Short readable name of a grid entry."""
    if isinstance(estimator, FrozenEstimator):
        return f"{type(estimator.estimator).__name__} (frozen)"
    name = type(estimator).__name__
    for parameter in ("n_components", "degree", "alpha", "hidden_layer_sizes"):
        if parameter in estimator.get_params(deep=False):
            return f"{name}({parameter}={estimator.get_params()[parameter]!r})"
    return name


def model_selection(
    preset="quick",
    *,
    output_dir=None,
    random_state=0,
    n_jobs=None,
    verbose=False,
    **settings,
):
    """Choose features and head of a surrogate by grouped cross-validation.

    A :class:`~skdiffusion.surrogate.SurrogateForecaster` around
    ``Pipeline([features, head])`` is searched by
    :class:`~sklearn.model_selection.GridSearchCV` over features (random
    Fourier, degree-4 polynomial, a pre-trained diffusion featurizer,
    frozen) and heads (ridge on standardised features, one hidden layer of
    256), scored by the
    one-step nRMSE with :class:`~sklearn.model_selection.GroupKFold` over
    trajectories, so no validation fold shares a trajectory with training.

    Parameters
    ----------
    preset : {"quick", "paper"}, default="quick"
        ``"quick"``: a few minutes on two CPU cores; ``"paper"``: the
        paper's training recipes on 2^20 states (a GPU).
    output_dir : str, path or None, default=None
        If given, write ``model_selection.csv``.
    random_state : int, default=0
        Seeds the data and the models.
    n_jobs : int or None, default=None
        Parallel fits of the search.
    verbose : bool, default=False
        Print progress.
    **settings
        Overrides of the preset's settings; see ``PRESETS``.

    Returns
    -------
    table : pandas.DataFrame or dict of ndarray
        ``cv_results_`` as a table, best first: ``features``, ``head``,
        ``mean_nrmse`` and ``std_nrmse`` (over folds, normalised units),
        ``rank``, ``mean_fit_time`` and ``mean_score_time`` (s), and
        ``split<i>_nrmse`` per fold.

    Notes
    -----
    The diffusion featurizer is trained once, on all states without their
    targets (the unlabeled pre-training of the paper), before the search.
    Its states include those of the validation folds, but never their
    targets.
    """
    from .. import DiffusionFeaturizer

    settings = resolve_preset(PRESETS, preset, settings)
    progress = Progress(verbose, "model selection")
    data_seed, model_seed = seeds_from(random_state, 2)
    # one set of trajectories; GroupKFold holds some out in each fold
    data = make_lorenz63(
        settings["n_trajectories"], settings["n_steps"], random_state=data_seed
    )
    featurizer = DiffusionFeaturizer(
        random_state=model_seed, **settings["featurizer"]
    ).fit(data.X)
    progress("featurizer trained; searching")
    search = make_search(
        settings,
        featurizer,
        random_state=model_seed,
        n_jobs=n_jobs,
        verbose=int(verbose),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        search.fit(data.X, data.X + data.y, groups=data.groups)
    table = make_table(cv_results_table(search.cv_results_))
    save_outputs(output_dir, "model_selection", table, progress=progress)
    return table


def cv_results_table(cv_results):
    """``cv_results_`` of the search as columns, nRMSE positive, best first.

    Parameters
    ----------
    cv_results : dict
        ``GridSearchCV(...).cv_results_`` of :func:`make_search`.

    Returns
    -------
    columns : dict of ndarray
        See :func:`model_selection`.
    """
    order = np.argsort(cv_results["rank_test_score"], kind="stable")
    columns = {
        "features": [_label(e) for e in cv_results["param_regressor__features"]],
        "head": [_label(e) for e in cv_results["param_regressor__head"]],
        "mean_nrmse": -np.asarray(cv_results["mean_test_score"]),
        "std_nrmse": np.asarray(cv_results["std_test_score"]),
        "rank": np.asarray(cv_results["rank_test_score"]),
        "mean_fit_time": np.asarray(cv_results["mean_fit_time"]),
        "mean_score_time": np.asarray(cv_results["mean_score_time"]),
    }
    n_splits = sum(key.startswith("split") for key in cv_results)
    for i in range(n_splits):
        columns[f"split{i}_nrmse"] = -np.asarray(cv_results[f"split{i}_test_score"])
    return {key: np.asarray(values)[order] for key, values in columns.items()}
