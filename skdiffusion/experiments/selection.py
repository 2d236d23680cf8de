"""Model selection: cross-validate features x heads with GroupKFold."""

import tempfile
import warnings
from dataclasses import dataclass

import pandas as pd
from sklearn.exceptions import ConvergenceWarning
from sklearn.frozen import FrozenEstimator
from sklearn.model_selection import GridSearchCV, GroupKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import PolynomialFeatures

from ..datasets import make_lorenz63
from ..featurizers import DiffusionFeaturizer, RFFFeaturizer
from ..linear_model import StreamingRidge
from ..metrics import make_nrmse_scorer
from ..neural import DenseRegressor, ShallowHeadRegressor
from ..surrogate import SurrogateForecaster
from . import _common as common


@dataclass(frozen=True)
class SelectionPreset:
    """Sizes and recipes of :func:`model_selection`; the defaults are "quick".

    ``head``: parameters of the one-hidden-layer
    :class:`~skdiffusion.DenseRegressor`; ``featurizer``: of the
    :class:`~skdiffusion.DiffusionFeaturizer`. ``stream_heads``: the heads
    compute their features chunk by chunk (ridge) or batch by batch
    (:class:`~skdiffusion.ShallowHeadRegressor`) instead of reading a cached
    feature matrix (see :func:`make_search`); ``chunk_size``: rows per chunk
    of the ridge heads.
    """

    n_trajectories: int = 4
    n_steps: int = 2_000
    n_splits: int = 4
    rff_components: int = 1536
    ridge_alpha: float = 1e-4
    width: int = 256
    # 10 epochs of a fold's 5,970 training pairs in batches of 256 (24 steps)
    head: dict = common.params(learning_rate=3e-4, batch_size=256, max_iter=10 * 24)
    featurizer: dict = common.params(max_iter=300, batch_size=1024)
    stream_heads: bool = False
    chunk_size: int = 4_096


PRESETS = {
    "quick": SelectionPreset(),
    # The paper's recipes on 2^20 states, for a GPU: 100 epochs of a fold's
    # 786,432 training pairs in batches of 16384 (48 steps each). A fold's
    # 1536 features would be a 9.7 GB matrix (float64), cached on disk per
    # fold and kind: the heads stream them instead.
    "paper": SelectionPreset(
        n_trajectories=16,
        n_steps=65_536 + 10,
        head={"learning_rate": 5e-5, "batch_size": 16_384, "max_iter": 4_800},
        featurizer=common.PAPER_FEATURIZER,
        stream_heads=True,
        chunk_size=65_536,
    ),
}


def make_search(preset, featurizer, *, memory=None, random_state=0, n_jobs=None):
    """GridSearchCV of a SurrogateForecaster over features x heads.

    Random Fourier, degree-4 polynomial or diffusion features (``featurizer``,
    fitted on unlabeled states, frozen), with a ridge or a one-hidden-layer
    head, scored by the one-step nRMSE; ``GroupKFold`` holds out whole
    trajectories. Fit it with ``(X, next_states, groups=groups)``.

    The grid is ``regressor__features`` x ``regressor__head`` of a pipeline
    whose ``memory`` computes each fold's features once for both heads; with
    ``preset.stream_heads`` it is ``regressor``, a list of the six models
    that never hold a feature matrix (:class:`~skdiffusion.StreamingRidge`
    with the features as its ``transformer``,
    :class:`~skdiffusion.ShallowHeadRegressor`), and ``memory`` is unused.
    """
    head = {**preset.head, "random_state": random_state, "n_iter_no_change": None}
    features = [
        RFFFeaturizer(preset.rff_components, random_state=random_state),
        PolynomialFeatures(4, include_bias=False),
        FrozenEstimator(featurizer),
    ]
    chunks = {"chunk_size": preset.chunk_size, "standardize": True}
    if preset.stream_heads:
        candidates = [
            model
            for transformer in features
            for model in (
                StreamingRidge(preset.ridge_alpha, transformer=transformer, **chunks),
                ShallowHeadRegressor(
                    transformer, hidden_layer_sizes=(preset.width,), **head
                ),
            )
        ]
        regressor, grid = candidates[0], {"regressor": candidates}
    else:  # both heads standardise their inputs themselves
        ridge = StreamingRidge(preset.ridge_alpha, **chunks)
        shallow = DenseRegressor((preset.width,), **head)
        regressor = Pipeline(
            [("features", "passthrough"), ("head", ridge)], memory=memory
        )
        grid = {"regressor__features": features, "regressor__head": [ridge, shallow]}
    return GridSearchCV(
        SurrogateForecaster(regressor),
        grid,
        # next-state nRMSE in normalised units = that of the increment
        scoring=make_nrmse_scorer(std=1.0),
        cv=GroupKFold(n_splits=preset.n_splits),
        n_jobs=n_jobs,
    )


def _name(estimator):
    if isinstance(estimator, FrozenEstimator):
        return f"{type(estimator.estimator).__name__} (frozen)"
    return type(estimator).__name__


def _features_of(model):
    """The features a streamed head reads."""
    if isinstance(model, ShallowHeadRegressor):
        return model.featurizer
    return model.transformer


def model_selection(
    preset="quick", *, output_dir=None, random_state=0, n_jobs=None, verbose=False
):
    """Choose features and head of a surrogate by grouped cross-validation.

    Runs :func:`make_search` on Lorenz 63 trajectories: the featurizer is
    trained once, before the search, on all states without their targets
    (the paper's unlabeled pre-training).

    Parameters
    ----------
    preset : {"quick", "paper"} or SelectionPreset, default="quick"
        ``"quick"``: minutes on two CPU cores; ``"paper"``: the paper's
        recipes on 2^20 states, for a GPU.
    output_dir : str, path or None, default=None
        If given, write ``model_selection.csv``.
    random_state : int, default=0
        Seeds the data and the models.
    n_jobs : int or None, default=None
        Parallel fits of the search.
    verbose : bool, default=False
        Report progress.

    Returns
    -------
    table : pandas.DataFrame
        ``cv_results_``, best first: ``features``, ``head``, ``mean_nrmse``,
        ``std_nrmse`` (normalised units), ``rank``, ``mean_fit_time``,
        ``mean_score_time`` (s) and ``split<i>_nrmse``.
    """
    preset = common.preset_of(preset, PRESETS)
    data_seed, seed = common.seeds_from(random_state, 2)
    data = make_lorenz63(preset.n_trajectories, preset.n_steps, random_state=data_seed)
    featurizer = DiffusionFeaturizer(**preset.featurizer, random_state=seed)
    featurizer.set_params(verbose=verbose).fit(data.X).set_params(verbose=0)
    with tempfile.TemporaryDirectory() as memory, warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        search = make_search(
            preset, featurizer, memory=memory, random_state=seed, n_jobs=n_jobs
        )
        search.set_params(verbose=int(verbose))
        search.fit(data.X, data.X + data.y, groups=data.groups)
    table = pd.DataFrame(search.cv_results_).rename(columns={"rank_test_score": "rank"})
    table = table.rename(columns=lambda key: key.replace("test_score", "nrmse"))
    if preset.stream_heads:
        models = table.pop("param_regressor")
        table["features"] = models.map(lambda model: _name(_features_of(model)))
        table["head"] = models.map(_name)
    else:
        table["features"] = table.pop("param_regressor__features").map(_name)
        table["head"] = table.pop("param_regressor__head").map(_name)
    scores = table.filter(regex=r"^(mean|split\d+)_nrmse$").columns
    table[scores] *= -1  # the scorer's negated nRMSE
    columns = ["features", "head", "mean_nrmse", "std_nrmse", "rank"]
    columns += ["mean_fit_time", "mean_score_time", *scores.drop("mean_nrmse")]
    table = table[columns].sort_values("rank", kind="stable", ignore_index=True)
    common.save(table, output_dir, "model_selection")
    return table
