"""Torch neural-network regressors with the scikit-learn estimator API.

Two networks of Finn et al. (2024): a dense ReLU network and a residual
network built like the paper's denoiser. They are the "trained from scratch"
surrogates of Lorenz 63 and the shallow heads on diffusion features. Both
share one training loop (:class:`_BaseTorchRegressor`) and differ only in
the module they build.
"""

import copy
from abc import abstractmethod
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.exceptions import NotFittedError
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import check_is_fitted
from torch import nn

from ._base import fit_context, row_chunks
from ._torch_utils import (
    DEVICE_CONSTRAINT,
    continued_history,
    mean_and_scale,
    reproducible_state,
    resolve_device,
    seeded_module,
    split_rows,
    standardized_tensor,
    training_generator,
    warn_training_end,
)
from ._validation import check_array, validate_data
from .diffusion import ConvDenoiser, build_denoiser
from .engine import LR_SCHEDULES, train
from .featurizers import DiffusionFeaturizer, check_feature_times

__all__ = [
    "ConvRegressor",
    "DenseRegressor",
    "FineTunedRegressor",
    "ResidualRegressor",
    "ShallowHeadRegressor",
]

# Rows per forward pass in predict and validation: bounds memory, not a
# tuning knob.
_PREDICT_CHUNK = 65536


class _DenseNet(nn.Module):
    """Linear layers with ReLU between them."""

    def __init__(self, n_features, hidden_layer_sizes, n_outputs):
        super().__init__()
        sizes = [n_features, *hidden_layer_sizes]
        self.hidden = nn.ModuleList(
            nn.Linear(n_in, n_out)
            for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True)
        )
        self.output = nn.Linear(sizes[-1], n_outputs)

    def forward(self, x):
        for layer in self.hidden:
            x = torch.relu(layer(x))
        return self.output(x)


class _ResidualBlock(nn.Module):
    """x + gamma * Linear(ReLU(Linear(LayerNorm(x)))), the denoiser's block."""

    def __init__(self, n_hidden, layer_scale):
        super().__init__()
        # No affine: the block's first Linear can learn any scale and shift.
        self.norm = nn.LayerNorm(n_hidden, elementwise_affine=False)
        self.linear1 = nn.Linear(n_hidden, n_hidden)
        self.linear2 = nn.Linear(n_hidden, n_hidden)
        # Layer scale: each block starts as (almost) the identity.
        self.gamma = nn.Parameter(torch.full((n_hidden,), float(layer_scale)))

    def forward(self, x):
        h = self.linear2(torch.relu(self.linear1(self.norm(x))))
        return x + self.gamma * h


class _ResidualNet(nn.Module):
    """Input Linear, residual blocks, output Linear."""

    def __init__(self, n_features, n_hidden, n_blocks, n_outputs, layer_scale):
        super().__init__()
        self.input = nn.Linear(n_features, n_hidden)
        self.blocks = nn.ModuleList(
            _ResidualBlock(n_hidden, layer_scale) for _ in range(n_blocks)
        )
        self.output = nn.Linear(n_hidden, n_outputs)

    def forward(self, x):
        x = self.input(x)
        for block in self.blocks:
            x = block(x)
        return self.output(x)



def _forward(module, X):
    """``module(X)`` without gradients, chunk by chunk to bound memory."""
    with torch.no_grad():
        return torch.cat([module(chunk) for chunk in X.split(_PREDICT_CHUNK)])


def _r2_score(pred, target):
    """R^2 averaged over outputs, as ``sklearn.metrics.r2_score`` computes it."""
    residual = ((target - pred) ** 2).sum(dim=0)
    total = ((target - target.mean(dim=0)) ** 2).sum(dim=0)
    # A constant output scores 1 when predicted exactly, else 0 (sklearn's rule).
    constant_score = (residual == 0).to(pred.dtype)
    score = torch.where(
        total > 0, 1 - residual / total.clamp_min(1e-30), constant_score
    )
    return score.mean().item()


class _BaseTorchRegressor(RegressorMixin, BaseEstimator):
    """Standardisation, prediction and pickling shared by the regressors.

    Subclasses implement :meth:`_build_module` and nothing else; training is
    :func:`skdiffusion.engine.train`.
    """

    _parameter_constraints: dict = {
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "lr_schedule": [StrOptions(set(LR_SCHEDULES))],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "max_iter": [Interval(Integral, 0, None, closed="left")],
        "eval_every": [Interval(Integral, 1, None, closed="left")],
        "shuffle": ["boolean"],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [None, Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "random_state": ["random_state"],
        "device": DEVICE_CONSTRAINT,
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
    }

    @abstractmethod
    def _build_module(self, n_features, n_outputs):
        """Return the untrained ``nn.Module`` mapping features to outputs."""

    @fit_context()
    def fit(self, X, y):
        """Train the network on ``(X, y)`` with Adam on mini-batches.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training inputs.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Training targets.

        Returns
        -------
        self : object
            The fitted regressor.
        """
        warm = self.warm_start and hasattr(self, "module_")
        X, y = validate_data(
            self,
            X,
            y,
            reset=not warm,
            dtype=[np.float64, np.float32],
            multi_output=True,
            y_numeric=True,
        )
        Y = y.reshape(len(y), -1)
        if warm and Y.shape[1] != self.n_outputs_:
            raise ValueError(
                f"y has {Y.shape[1]} outputs but this warm-started regressor was "
                f"fitted with {self.n_outputs_}; set warm_start=False to refit."
            )
        device = resolve_device(self.device)
        rng = check_random_state(self.random_state)
        if warm:
            stats = (self.x_mean_, self.x_scale_, self.y_mean_, self.y_scale_)
            module = copy.deepcopy(self.module_)  # never train in place
        else:
            stats, module = self._start(X, Y, rng)
        history = self._train(module.to(device), X, Y, stats, rng, device, warm)

        self.x_mean_, self.x_scale_, self.y_mean_, self.y_scale_ = stats
        self.n_outputs_ = Y.shape[1]
        self._y_is_1d = y.ndim == 1
        self.module_ = module.eval()
        self._optimizer_state = history.optimizer_state
        self._record(history)
        warn_training_end(self, history)
        return self

    def _start(self, X, Y, rng):
        """Standardisation statistics and the untrained module of a new fit."""
        stats = (*mean_and_scale(X), *mean_and_scale(Y, "y"))
        module = seeded_module(lambda: self._build_module(X.shape[1], Y.shape[1]), rng)
        return stats, module

    def _inputs(self, X):
        """``X`` validated for predict."""
        return validate_data(self, X, reset=False, dtype=[np.float64, np.float32])

    def _train(self, module, X, Y, stats, rng, device, warm):
        """Run :func:`~skdiffusion.engine.train` on standardised tensors."""
        X_t = standardized_tensor(X, stats[0], stats[1], device)
        Y_t = standardized_tensor(Y, stats[2], stats[3], device)
        validation = None
        if self.early_stopping:
            train_rows, val_rows = split_rows(len(X), self.validation_fraction, rng)
            X_val, Y_val = X_t[val_rows], Y_t[val_rows]
            X_t, Y_t = X_t[train_rows], Y_t[train_rows]

            def validation():
                return _r2_score(_forward(module, X_val), Y_val)

        def batch_loss(rows, share=slice(None)):
            x, y = (X_t, Y_t) if rows is None else (X_t[rows], Y_t[rows])
            return torch.nn.functional.mse_loss(module(x[share]), y[share])

        history = continued_history(self, warm)
        return train(
            module,
            batch_loss,
            len(X_t),
            max_iter=self.max_iter,
            batch_size=self.batch_size,
            learning_rate=self.learning_rate,
            lr_schedule=self.lr_schedule,
            shuffle=self.shuffle,
            validation_score=validation,
            eval_every=self.eval_every,
            n_iter_no_change=self.n_iter_no_change,
            tol=self.tol,
            generator=training_generator(rng, device, history.n_iter),
            device=device,
            optimizer_state=self._optimizer_state if warm else None,
            history=history,
            verbose=self.verbose,
            desc=type(self).__name__,
        )

    def _record(self, history):
        """Set the curves; ``best_*`` summarise them."""
        self.loss_curve_ = list(history.loss_curve)
        self.n_iter_ = history.n_iter
        if self.early_stopping:
            self.validation_scores_ = list(history.validation_scores)
            self.best_validation_score_ = max(self.validation_scores_, default=None)
            self.best_loss_ = None
        else:
            self.validation_scores_ = self.best_validation_score_ = None
            self.best_loss_ = min(self.loss_curve_, default=None)

    def predict(self, X):
        """Predict targets for ``X``, in the units of the training targets.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Inputs.

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_outputs)
            Predictions; 1-D when the model was fitted on a 1-D ``y``. float32
            when ``X`` is float32, else float64.
        """
        check_is_fitted(self)
        X = self._inputs(X)
        device = resolve_device(self.device)
        # The device may have been changed (e.g. after unpickling on a GPU box).
        self.module_.to(device)
        chunks = []
        with torch.inference_mode():
            for rows in row_chunks(X.shape[0], _PREDICT_CHUNK):
                x = standardized_tensor(X[rows], self.x_mean_, self.x_scale_, device)
                chunks.append(self.module_(x).cpu().numpy())
        out = np.concatenate(chunks).astype(np.float64) * self.y_scale_ + self.y_mean_
        out = out.astype(X.dtype, copy=False)
        return out.ravel() if self._y_is_1d else out

    def __getstate__(self):
        state = super().__getstate__()
        # Pickle a CPU copy so that a model fitted on a GPU loads anywhere.
        module = state.get("module_")
        if module is not None and any(
            p.device.type != "cpu" for p in module.parameters()
        ):
            state["module_"] = copy.deepcopy(module).cpu()
        return reproducible_state(state)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags


_COMMON_PARAMETERS = """learning_rate : float, default=1e-3
        Adam's step size (the peak of the schedule). Finn et al. (2024) train
        from scratch with 5e-5, constant, on 1.6e7 samples; small data sets
        need larger steps.
    lr_schedule : {"constant", "cosine"}, default="constant"
        How the step size changes over the ``max_iter`` steps of each call
        to ``fit``: ``"constant"`` keeps ``learning_rate``; ``"cosine"``
        decays it from ``learning_rate`` towards zero along half a cosine,
        reaching zero at step ``max_iter``. Decaying the step size removes
        the noise floor that Adam's error sits on at a constant rate, so for
        a fixed budget ``"cosine"`` with a larger peak (e.g. 3e-3) is more
        accurate; see Notes. It only finishes its decay when training runs
        all ``max_iter`` steps: set ``n_iter_no_change=None`` for a fixed
        budget. With ``warm_start``, each ``fit`` runs the whole schedule
        again.
    batch_size : int, default=256
        Samples per mini-batch; clipped to the number of training samples.
    max_iter : int, default=5000
        Optimiser steps (mini-batches) per call to ``fit``: the budget, in
        the same unit as :class:`~skdiffusion.DiffusionFeaturizer`'s
        ``max_iter`` (not epochs, unlike
        :class:`~sklearn.neural_network.MLPRegressor`). One epoch is
        ``ceil(n_samples / batch_size)`` steps. 0 gives the untrained
        network.
    eval_every : int, default=100
        Steps between evaluations: one point of ``loss_curve_`` (the mean
        training loss over the interval), one validation score, one
        progress update, one early-stopping check.
    shuffle : bool, default=True
        Whether to reshuffle the samples at each pass over the data.
    early_stopping : bool, default=False
        Whether to hold out ``validation_fraction`` of the data, score its
        R^2 at each evaluation (the stopping score), and keep the weights of
        the best evaluation. When False, the stopping score is minus the
        training loss.
    validation_fraction : float, default=0.1
        Fraction of the training samples held out for early stopping (drawn
        at random, rounded). Only used when ``early_stopping`` is True.
    n_iter_no_change : int or None, default=10
        Training stops after this many evaluations in a row that improve
        the best score by no more than ``tol``; None never stops early.
    tol : float, default=1e-4
        Smallest improvement of the score that counts.
    random_state : int, RandomState instance or None, default=None
        Seeds the initial weights, the validation split and the shuffling.
        An int makes two fits give identical models on the same device.
    device : str or torch.device, default="auto"
        Where to train and predict: ``"auto"`` (a GPU if available, else
        the CPU), ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ... It may be changed
        with ``set_params`` after fitting or unpickling; the next ``predict``
        moves the network there.
    verbose : int or bool, default=0
        Show training progress (a bar in a terminal or notebook, lines
        otherwise, with elapsed time and time left) when positive.
    warm_start : bool, default=False
        Whether ``fit`` continues from the previous solution (weights,
        optimiser state and standardisation) for another ``max_iter``
        steps instead of starting afresh; its batches are new draws."""

_COMMON_ATTRIBUTES = """module_ : torch.nn.Module
        The trained network; it maps standardised inputs to standardised
        targets.
    x_mean_ : ndarray of shape (`n_features_in_`,)
        Per-feature mean of the training inputs.
    x_scale_ : ndarray of shape (`n_features_in_`,)
        Per-feature standard deviation of the training inputs (1 where
        constant).
    y_mean_ : ndarray of shape (`n_outputs_`,)
        Per-output mean of the training targets.
    y_scale_ : ndarray of shape (`n_outputs_`,)
        Per-output standard deviation of the training targets (1 where
        constant).
    n_outputs_ : int
        Number of outputs.
    loss_curve_ : list of float
        Mean squared error on the standardised training targets over each
        interval of ``eval_every`` steps (warm starts append).
    best_loss_ : float or None
        Smallest value of ``loss_curve_``; None with early stopping.
    validation_scores_ : list of float or None
        R^2 on the validation set at each evaluation; None without early
        stopping.
    best_validation_score_ : float or None
        Best validation R^2 of the last fit (its weights are kept); None
        without early stopping.
    n_iter_ : int
        Optimiser steps applied, summed over warm-started fits.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during fit, when ``X`` has string column names."""

_COMMON_NOTES = """Inputs and targets are standardised with their training mean and
    standard deviation; the network is trained in float32 on the mean squared
    error of the standardised targets, and predictions are returned in the
    original units. The whole training set is copied once to ``device`` and
    mini-batches are drawn from it by index, so training data must fit in
    that device's memory.

    Training is :func:`skdiffusion.engine.train`, the loop every torch
    estimator of the package uses. A diverging fit (training loss
    non-finite, or above 1e4 times the larger of the first loss and 1,
    checked after the last step too) raises a
    :class:`~skdiffusion.engine.TrainingDivergedError` (a ``ValueError``)
    suggesting a lower ``learning_rate``, and any failed ``fit`` leaves the
    estimator as it was before the call (weights, optimiser state,
    ``n_features_in_``). Interrupting ``fit`` (Ctrl-C) warns and keeps the
    weights reached so far (the best ones with early stopping), with
    ``n_iter_`` counting the steps applied.

    Pickles hold the network on the CPU: a model fitted on a GPU loads on a
    machine without one.

    With a fixed number of steps the step-size schedule matters as much as
    the network's speed: on the Lorenz 1963 surrogate task, with the steps
    that fit in 15 s on one CPU thread, ``lr_schedule="cosine"`` with
    ``learning_rate=3e-3`` gave a validation nRMSE 1.2 to 2.4 times lower
    than the best constant rate of 3e-4, 1e-3 and 3e-3 (batches of 256);
    ``benchmarks/bench_neural.py`` races it against
    :class:`sklearn.neural_network.MLPRegressor`, whose Adam has no schedule.
    The default stays ``"constant"``: the default stopping rule ends such
    training long before ``max_iter`` (after 17 to 19 epochs on 20 000
    Lorenz 1963 pairs, about 1400 steps), where a cosine decay has barely
    begun and no consistent difference was measured, and warm-started fits
    of a few steps each would restart the decay at every call."""


class DenseRegressor(_BaseTorchRegressor):
    __doc__ = f"""Fully connected ReLU network regressor, trained with torch.

    The dense surrogate of Finn et al. (2024): hidden layers of 256 units
    with ReLU, trained with Adam on the mean squared error. With one hidden
    layer it is also the paper's shallow head on diffusion features.

    Parameters
    ----------
    hidden_layer_sizes : int or array-like of int, default=(256,)
        Number of units of each hidden layer; ``()`` gives a linear model.
    {_COMMON_PARAMETERS}

    Attributes
    ----------
    {_COMMON_ATTRIBUTES}

    See Also
    --------
    ResidualRegressor : Residual network with layer normalisation.
    sklearn.neural_network.MLPRegressor : The numpy equivalent.

    Notes
    -----
    {_COMMON_NOTES}

    Finn et al. (2024) compare dense networks of 1, 2 and 3 hidden layers of
    256 units, trained from scratch with Adam and ``learning_rate=5e-5``, as
    surrogates of the Lorenz 1963 increment over 0.1 model time units.

    References
    ----------
    T. S. Finn, L. Disson, A. Farchi, M. Bocquet and C. Durand,
    "Representation learning with unconditional denoising diffusion models
    for dynamical systems", Nonlinear Processes in Geophysics 31, 409-431,
    2024.

    Examples
    --------
    >>> import numpy as np
    >>> from skdiffusion import DenseRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.uniform(-1, 1, size=(200, 2))
    >>> y = X[:, 0] ** 2 + X[:, 1]
    >>> reg = DenseRegressor((32,), max_iter=20, random_state=0).fit(X, y)
    >>> reg.predict(X[:3]).shape
    (3,)
    """

    _parameter_constraints: dict = {
        **_BaseTorchRegressor._parameter_constraints,
        "hidden_layer_sizes": [
            "array-like",
            Interval(Integral, 1, None, closed="left"),
        ],
    }

    def __init__(
        self,
        hidden_layer_sizes=(256,),
        *,
        learning_rate=1e-3,
        lr_schedule="constant",
        batch_size=256,
        max_iter=5000,
        eval_every=100,
        shuffle=True,
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=10,
        tol=1e-4,
        random_state=None,
        device="auto",
        verbose=0,
        warm_start=False,
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        _common_init(self, locals())

    def _build_module(self, n_features, n_outputs):
        sizes = np.atleast_1d(self.hidden_layer_sizes)
        if sizes.ndim != 1 or not all(
            isinstance(size, Integral) and size >= 1 for size in sizes.tolist()
        ):
            raise ValueError(
                "hidden_layer_sizes must be positive integers, got "
                f"{self.hidden_layer_sizes!r}."
            )
        return _DenseNet(n_features, sizes.tolist(), n_outputs)


class ResidualRegressor(_BaseTorchRegressor):
    __doc__ = f"""Residual network regressor with layer-scaled blocks, in torch.

    The residual surrogate of Finn et al. (2024), built like their denoiser
    without the time conditioning: an input ``Linear`` to ``n_hidden`` units,
    ``n_blocks`` blocks ``x + gamma * Linear(ReLU(Linear(LayerNorm(x))))``
    (layer normalisation without affine parameters, learnable per-channel
    ``gamma`` initialised at ``layer_scale``), and an output ``Linear``.

    Parameters
    ----------
    n_hidden : int, default=256
        Width of the residual stream and of each block.
    n_blocks : int, default=3
        Number of residual blocks.
    layer_scale : float, default=1e-6
        Initial value of each block's ``gamma``; small values make every
        block start as the identity.
    {_COMMON_PARAMETERS}

    Attributes
    ----------
    {_COMMON_ATTRIBUTES}

    See Also
    --------
    DenseRegressor : Plain fully connected ReLU network.

    Notes
    -----
    {_COMMON_NOTES}

    Finn et al. (2024) train this network (256 units, 3 blocks, layer scale
    1e-6) from scratch with Adam and ``learning_rate=5e-5`` as a surrogate of
    the Lorenz 1963 increment over 0.1 model time units.

    References
    ----------
    T. S. Finn, L. Disson, A. Farchi, M. Bocquet and C. Durand,
    "Representation learning with unconditional denoising diffusion models
    for dynamical systems", Nonlinear Processes in Geophysics 31, 409-431,
    2024.

    Examples
    --------
    >>> import numpy as np
    >>> from skdiffusion import ResidualRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.uniform(-1, 1, size=(200, 3))
    >>> Y = np.column_stack([X[:, 0] * X[:, 1], np.sin(X[:, 2])])
    >>> reg = ResidualRegressor(32, n_blocks=2, max_iter=20, random_state=0)
    >>> reg.fit(X, Y).predict(X[:3]).shape
    (3, 2)
    """

    _parameter_constraints: dict = {
        **_BaseTorchRegressor._parameter_constraints,
        "n_hidden": [Interval(Integral, 1, None, closed="left")],
        "n_blocks": [Interval(Integral, 0, None, closed="left")],
        "layer_scale": [Interval(Real, None, None, closed="neither")],
    }

    def __init__(
        self,
        n_hidden=256,
        *,
        n_blocks=3,
        layer_scale=1e-6,
        learning_rate=1e-3,
        lr_schedule="constant",
        batch_size=256,
        max_iter=5000,
        eval_every=100,
        shuffle=True,
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=10,
        tol=1e-4,
        random_state=None,
        device="auto",
        verbose=0,
        warm_start=False,
    ):
        self.n_hidden = n_hidden
        self.n_blocks = n_blocks
        self.layer_scale = layer_scale
        _common_init(self, locals())

    def _build_module(self, n_features, n_outputs):
        return _ResidualNet(
            n_features, self.n_hidden, self.n_blocks, n_outputs, self.layer_scale
        )


class _AtTime(nn.Module):
    """A denoiser's trunk read at one fixed pseudo-time, with its own output layer.

    On a ring (a `ConvDenoiser`) the output is one value per site (a
    pointwise convolution) when `per_site`, else `n_outputs` values from the
    channels averaged over the sites.
    """

    def __init__(self, denoiser, time, n_outputs, per_site=False):
        super().__init__()
        denoiser.out_proj = nn.Identity()  # its velocity head is not this task's
        self.denoiser, self.per_site = denoiser, per_site
        self.ring = isinstance(denoiser, ConvDenoiser)
        self.register_buffer("time", torch.tensor(int(time)))
        n_hidden = denoiser.n_hidden
        if per_site:
            self.head = nn.Conv1d(n_hidden, 1, 1)
        else:
            self.head = nn.Linear(n_hidden, n_outputs)

    def forward(self, x):
        h = self.denoiser.hidden(x, self.time)
        if self.per_site:
            return self.head(h).squeeze(1)
        return self.head(h.mean(dim=2) if self.ring else h)


class _RingRegressor(_BaseTorchRegressor):
    """A regressor of a field on a ring, of any size.

    A ``y`` with one column per site of ``X`` is predicted site by site;
    any other ``y`` from the channels averaged over the sites. Inputs (and
    per-site targets) are standardised with one mean and scale for all sites
    (translation symmetry).
    """

    def _architecture(self):
        return "conv"

    def _ring(self):
        return self._architecture() == "conv"

    def _start(self, X, Y, rng):
        if not self._ring():
            return super()._start(X, Y, rng)
        per_site = Y.shape[1] == X.shape[1]
        x_stats = mean_and_scale(X.reshape(-1, 1))
        y_stats = mean_and_scale(Y.reshape(-1, 1) if per_site else Y, "y")
        module = seeded_module(
            lambda: self._build_module(X.shape[1], Y.shape[1], per_site), rng
        )
        return (*x_stats, *y_stats), module

    def _inputs(self, X):
        if not self._ring():
            return super()._inputs(X)
        return check_array(X, dtype=[np.float64, np.float32])

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # a ring's convolutions, not a model of unordered tabular columns
        tags.regressor_tags.poor_score = self._architecture() == "conv"
        return tags


def _common_init(estimator, params):
    """Store the training parameters shared by every regressor (sklearn style)."""
    for name in _TRAINING_PARAMETERS:
        setattr(estimator, name, params[name])


_TRAINING_PARAMETERS = (
    "learning_rate", "lr_schedule", "batch_size", "max_iter", "eval_every",
    "shuffle", "early_stopping", "validation_fraction", "n_iter_no_change",
    "tol", "random_state", "device", "verbose", "warm_start",
)


class ConvRegressor(_RingRegressor):
    __doc__ = f"""Convolutional network regressor of a field on a ring, in torch.

    The trunk of :class:`~skdiffusion.diffusion.ConvDenoiser` trained from
    scratch on the target: circular convolutions over the sites (input
    convolution, ``n_blocks`` residual blocks of layer norm, convolution,
    activation, convolution and layer scale). A ``y`` with one column per
    site of ``X`` (e.g. the increment of a Lorenz 96 state) gets a
    pointwise output, one value per site; any other ``y`` is predicted from
    the channels averaged over the sites. Its weights do not depend on the
    number of sites: it predicts rings of any size.

    Parameters
    ----------
    n_hidden : int, default=64
        Channels per site.
    n_blocks : int, default=3
        Number of residual blocks.
    kernel_size : int, default=5
        Width (odd) of every convolution.
    activation : {{"silu", "gelu", "relu"}}, default="silu"
        Activation inside the blocks.
    {_COMMON_PARAMETERS}

    Attributes
    ----------
    {_COMMON_ATTRIBUTES}

    See Also
    --------
    FineTunedRegressor : The same trunk, starting from a trained featurizer.
    skdiffusion.DiffusionFeaturizer : ``architecture="conv"`` gives the
        pretrained trunk's features.

    Notes
    -----
    {_COMMON_NOTES}

    Inputs and targets are standardised with one mean and one standard
    deviation over all sites (translation symmetry), so ``x_mean_`` and
    friends have one value.

    Examples
    --------
    >>> import numpy as np
    >>> from skdiffusion import ConvRegressor
    >>> X = np.random.default_rng(0).normal(size=(64, 10))
    >>> y = np.roll(X, 1, axis=1) - X
    >>> reg = ConvRegressor(8, n_blocks=1, max_iter=20, random_state=0).fit(X, y)
    >>> reg.predict(np.random.default_rng(1).normal(size=(2, 16))).shape
    (2, 16)
    """

    _parameter_constraints: dict = {
        **_BaseTorchRegressor._parameter_constraints,
        "n_hidden": [Interval(Integral, 1, None, closed="left")],
        "n_blocks": [Interval(Integral, 0, None, closed="left")],
        "kernel_size": [Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions({"silu", "gelu", "relu"})],
    }

    def __init__(
        self,
        n_hidden=64,
        *,
        n_blocks=3,
        kernel_size=5,
        activation="silu",
        learning_rate=1e-3,
        lr_schedule="constant",
        batch_size=256,
        max_iter=5000,
        eval_every=100,
        shuffle=True,
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=10,
        tol=1e-4,
        random_state=None,
        device="auto",
        verbose=0,
        warm_start=False,
    ):
        self.n_hidden = n_hidden
        self.n_blocks = n_blocks
        self.kernel_size = kernel_size
        self.activation = activation
        _common_init(self, locals())

    def _build_module(self, n_features, n_outputs, per_site=False):
        trunk = build_denoiser(
            "conv", n_features, n_hidden=self.n_hidden, n_blocks=self.n_blocks,
            time_embedding_dim=4, n_steps=0, activation=self.activation,
            kernel_size=self.kernel_size,
        )
        return _AtTime(trunk, 0, n_outputs, per_site)


class FineTunedRegressor(_RingRegressor):
    __doc__ = f"""A fitted featurizer's network, fine-tuned on a regression target.

    Transfer in the deep-learning sense: the trunk of a fitted
    :class:`~skdiffusion.DiffusionFeaturizer` (its residual blocks read at
    the pseudo-time ``time``) gets a new output layer, and the whole
    network is trained on ``(X, y)``, starting from the pretrained weights
    rather than a random draw. Inputs are standardised as the featurizer
    standardised its states. With ``architecture="conv"`` the output is one
    value per site and the regressor predicts rings of any size; with the
    dense network it is any number of outputs.

    Parameters
    ----------
    featurizer : DiffusionFeaturizer
        A fitted featurizer (or one wrapped in
        :class:`sklearn.frozen.FrozenEstimator`, which survives ``clone``);
        an unfitted one is cloned and fitted on ``X`` first (pretraining on
        the regression inputs). The featurizer itself is never changed.
    time : int, default=0
        The pseudo-time at which the trunk is read, as a feature time.
    {_COMMON_PARAMETERS}

    Attributes
    ----------
    featurizer_ : DiffusionFeaturizer
        The fitted featurizer whose weights the training started from.
    {_COMMON_ATTRIBUTES}

    See Also
    --------
    ConvRegressor : The same convolutional trunk trained from scratch.

    Notes
    -----
    {_COMMON_NOTES}

    Examples
    --------
    >>> import numpy as np
    >>> from skdiffusion import DiffusionFeaturizer, FineTunedRegressor
    >>> X = np.random.default_rng(0).normal(size=(64, 10))
    >>> featurizer = DiffusionFeaturizer(architecture="conv", n_hidden=8,
    ...                                  n_blocks=1, max_iter=10).fit(X)
    >>> reg = FineTunedRegressor(featurizer, max_iter=20, random_state=0)
    >>> reg.fit(X, np.roll(X, 1, axis=1) - X).predict(X[:2]).shape
    (2, 10)
    """

    _parameter_constraints: dict = {
        **_BaseTorchRegressor._parameter_constraints,
        "featurizer": [HasMethods(["fit", "transform"])],
        "time": [Interval(Integral, 0, None, closed="left")],
    }

    def __init__(
        self,
        featurizer,
        *,
        time=0,
        learning_rate=1e-3,
        lr_schedule="constant",
        batch_size=256,
        max_iter=5000,
        eval_every=100,
        shuffle=True,
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=10,
        tol=1e-4,
        random_state=None,
        device="auto",
        verbose=0,
        warm_start=False,
    ):
        self.featurizer = featurizer
        self.time = time
        _common_init(self, locals())

    def _architecture(self):
        featurizer = getattr(self, "featurizer_", self.featurizer)
        return getattr(featurizer, "estimator", featurizer).architecture

    def _start(self, X, Y, rng):
        featurizer = getattr(self.featurizer, "estimator", self.featurizer)
        try:
            check_is_fitted(featurizer)
        except NotFittedError:
            featurizer = clone(featurizer).fit(X)
        self.featurizer_ = featurizer
        stats, module = super()._start(X, Y, rng)  # the targets' statistics
        return (featurizer.mean_, featurizer.scale_, *stats[2:]), module

    def _build_module(self, n_features, n_outputs, per_site=False):
        network, _ = self.featurizer_._network("fine-tuning")
        trunk = copy.deepcopy(network).cpu().requires_grad_(True).train()
        return _AtTime(trunk, self.time, n_outputs, per_site)


# Rows whose features set the head's input standardisation: the means and
# standard deviations of 65,536 rows are within about 1 % of their values
# over any larger set.
_FEATURE_STATS_ROWS = 65_536


class _OnFeatures(nn.Module):
    """A frozen denoiser's features at fixed times, standardised, into a head."""

    def __init__(self, denoiser, times, mean, scale, head):
        super().__init__()
        self.denoiser = denoiser.requires_grad_(False)
        self.times = [int(time) for time in times]
        self.register_buffer("mean", mean)
        self.register_buffer("scale", scale)
        self.head = head

    def forward(self, x):
        features = self.denoiser.features(x, self.times)  # no gradient
        return self.head((features - self.mean) / self.scale)


class _OnTransformer(nn.Module):
    """Any fitted transformer's features of each batch, standardised, into a head.

    The transformer runs on the host (numpy) and its features go to the
    batch's device; it has no weights to train.
    """

    def __init__(self, transformer, mean, scale, head):
        super().__init__()
        self.transformer = transformer
        self.register_buffer("mean", mean)
        self.register_buffer("scale", scale)
        self.head = head

    def forward(self, x):
        features = _host_features(self.transformer, x.detach().cpu().numpy())
        features = torch.from_numpy(features).to(x.device)
        return self.head((features - self.mean) / self.scale)


def _host_features(transformer, X):
    """``transformer.transform(X)`` as a dense float32 array."""
    features = transformer.transform(X)
    if hasattr(features, "toarray"):  # a sparse matrix
        features = features.toarray()
    return np.asarray(features, dtype=np.float32)


def _standardizer(features):
    """StandardScaler's mean and scale (no degrees-of-freedom correction)."""
    mean, scale = features.mean(dim=0), features.std(dim=0, correction=0)
    return mean, torch.where(scale > 0, scale, torch.ones_like(scale))


class ShallowHeadRegressor(_BaseTorchRegressor):
    __doc__ = f"""A dense network on a frozen featurizer's features, computed per batch.

    The model of ``make_pipeline(FrozenEstimator(featurizer),
    DenseRegressor(hidden_layer_sizes))`` (the paper's shallow heads on
    diffusion features), trained without ever holding the feature matrix:
    each mini-batch of states goes through the frozen featurizer (a
    diffusion featurizer's denoiser at ``feature_times``, on the training
    device; any other transformer on the host), and only the head's weights
    are trained. Memory is
    that of the states, whatever the number of features (the pipeline holds
    ``n_samples x n_features`` values, 33-66 GB for 1.6e7 states and 512
    features); the price is the features' forward pass at every step.

    Parameters
    ----------
    featurizer : DiffusionFeaturizer or transformer
        A fitted dense :class:`~skdiffusion.DiffusionFeaturizer`, whose
        features its network computes on the training device, or any other
        fitted transformer (e.g. :class:`~skdiffusion.RFFFeaturizer`,
        :class:`~sklearn.preprocessing.PolynomialFeatures`), whose
        ``transform`` runs on the host, batch by batch, on float32 inputs.
        Either may be wrapped in :class:`sklearn.frozen.FrozenEstimator`; an
        unfitted one is cloned and fitted on ``X`` first. It is never changed.
    feature_times : sequence of int or None, default=None
        Pseudo-times of a diffusion featurizer's features; None takes the
        featurizer's. Only for a :class:`~skdiffusion.DiffusionFeaturizer`.
    hidden_layer_sizes : tuple of int, default=(256,)
        Widths of the head's hidden ReLU layers.
    {_COMMON_PARAMETERS}
    Attributes
    ----------
    featurizer_ : DiffusionFeaturizer
        The fitted featurizer whose features the head reads.
    {_COMMON_ATTRIBUTES}
    See Also
    --------
    FineTunedRegressor : Trains the featurizer's network too.

    Notes
    -----
    {_COMMON_NOTES}
    States are standardised as the featurizer standardised its own; the
    features are standardised by their means and standard deviations over
    up to 65,536 training rows drawn with ``random_state`` (the pipeline's
    scaler uses every row; the two differ by about 1 %).

    Examples
    --------
    >>> import numpy as np
    >>> from skdiffusion import DiffusionFeaturizer, ShallowHeadRegressor
    >>> X = np.random.default_rng(0).normal(size=(256, 3))
    >>> featurizer = DiffusionFeaturizer(n_hidden=16, n_blocks=1, max_iter=10,
    ...                                  random_state=0).fit(X)
    >>> head = ShallowHeadRegressor(featurizer, feature_times=(0, 400),
    ...                             max_iter=20, random_state=0)
    >>> head.fit(X, np.sin(X)).predict(X[:2]).shape
    (2, 3)
    """

    _parameter_constraints: dict = {
        **_BaseTorchRegressor._parameter_constraints,
        "featurizer": [HasMethods(["fit", "transform"])],
        "feature_times": [None, "array-like"],
        "hidden_layer_sizes": ["array-like"],
    }

    def __init__(
        self,
        featurizer,
        *,
        feature_times=None,
        hidden_layer_sizes=(256,),
        learning_rate=1e-3,
        lr_schedule="constant",
        batch_size=256,
        max_iter=5000,
        eval_every=100,
        shuffle=True,
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=10,
        tol=1e-4,
        random_state=None,
        device="auto",
        verbose=0,
        warm_start=False,
    ):
        self.featurizer = featurizer
        self.feature_times = feature_times
        self.hidden_layer_sizes = hidden_layer_sizes
        _common_init(self, locals())

    def _build_module(self, n_features, n_outputs):
        return _DenseNet(n_features, list(self.hidden_layer_sizes), n_outputs)

    def _start(self, X, Y, rng):
        featurizer = getattr(self.featurizer, "estimator", self.featurizer)
        try:
            check_is_fitted(featurizer)
        except NotFittedError:
            featurizer = clone(featurizer).fit(X)
        if not isinstance(featurizer, DiffusionFeaturizer):
            return self._start_on_transformer(featurizer, X, Y, rng)
        if featurizer.architecture != "dense":
            raise ValueError(
                "ShallowHeadRegressor reads a dense featurizer's features; for a "
                "'conv' featurizer use FineTunedRegressor."
            )
        network, _ = featurizer._network("a shallow head")
        denoiser = copy.deepcopy(network).cpu()
        times = featurizer._times()
        if self.feature_times is not None:
            times = check_feature_times(
                self.feature_times, featurizer.n_diffusion_steps
            )
        n_features = denoiser.n_hidden * len(times)
        # drawn first, as DenseRegressor draws its weights
        head = seeded_module(lambda: self._build_module(n_features, Y.shape[1]), rng)
        rows = slice(None)
        if len(X) > _FEATURE_STATS_ROWS:
            rows = np.sort(rng.permutation(len(X))[:_FEATURE_STATS_ROWS])
        x = standardized_tensor(X[rows], featurizer.mean_, featurizer.scale_, "cpu")
        mean, scale = _standardizer(denoiser.features(x, times.tolist()))
        self.featurizer_ = featurizer
        y_stats = mean_and_scale(Y, "y")
        module = _OnFeatures(denoiser, times, mean, scale, head)
        return (featurizer.mean_, featurizer.scale_, *y_stats), module

    def _start_on_transformer(self, transformer, X, Y, rng):
        """The module of a head on another transformer's (host) features."""
        if self.feature_times is not None:
            raise ValueError(
                "feature_times applies to a DiffusionFeaturizer, not to a "
                f"{type(transformer).__name__}; leave it None."
            )
        # the network standardises nothing: the transformer reads X as given
        inputs = X.astype(np.float32)
        n_features = _host_features(transformer, inputs[:1]).shape[1]
        head = seeded_module(lambda: self._build_module(n_features, Y.shape[1]), rng)
        rows = slice(None)
        if len(X) > _FEATURE_STATS_ROWS:
            rows = np.sort(rng.permutation(len(X))[:_FEATURE_STATS_ROWS])
        features = torch.from_numpy(_host_features(transformer, inputs[rows]))
        mean, scale = _standardizer(features)
        self.featurizer_ = transformer
        x_stats = (np.zeros(X.shape[1]), np.ones(X.shape[1]))
        module = _OnTransformer(transformer, mean, scale, head)
        return (*x_stats, *mean_and_scale(Y, "y")), module
