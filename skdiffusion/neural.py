"""Torch neural-network regressors with the scikit-learn estimator API.

Two networks of Finn et al. (2024): a dense ReLU network and a residual
network built like the paper's denoiser. They are the "trained from scratch"
surrogates of Lorenz 63 and the shallow heads on diffusion features. Both
share one training loop (:class:`_BaseTorchRegressor`) and differ only in
the module they build.
"""

import copy
import functools
import math
import time
import warnings
from abc import abstractmethod
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import StandardScaler
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data
from torch import nn

from ._torch_utils import (
    DEVICE_CONSTRAINT,
    resolve_device,
    to_cpu,
    torch_generator,
    torch_seed,
)
from .diffusion.training import LR_SCHEDULES, learning_rate_at

__all__ = ["DenseRegressor", "ResidualRegressor"]

# Rows per forward pass in predict: bounds memory, not a tuning knob.
_PREDICT_CHUNK = 65536
# Targets are standardised, so predicting zero costs a loss of 1: a mean loss
# this large only happens when the weights have blown up.
_DIVERGED_LOSS = 1e6


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


def _standardized_tensor(A, mean, scale, device):
    """Return float32 ``(A - mean) / scale`` on ``device`` as a new tensor."""
    if A.dtype == np.float64:
        # Subtract in float64 first: offsets must not eat float32 precision.
        return torch.from_numpy(((A - mean) / scale).astype(np.float32)).to(device)
    tensor = torch.tensor(A, dtype=torch.float32, device=device)
    tensor -= torch.as_tensor(mean, dtype=torch.float32, device=device)
    tensor /= torch.as_tensor(scale, dtype=torch.float32, device=device)
    return tensor


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
    """Training loop, standardisation, prediction and pickling shared by all.

    Subclasses implement :meth:`_build_module` and nothing else.
    """

    _parameter_constraints: dict = {
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "lr_schedule": [StrOptions(set(LR_SCHEDULES))],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "shuffle": ["boolean"],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="left")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "random_state": ["random_state"],
        "device": DEVICE_CONSTRAINT,
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
    }

    @abstractmethod
    def _build_module(self, n_features, n_outputs):
        """Return the untrained ``nn.Module`` mapping features to outputs."""

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
        # validate_data sets these before training; a failed fit restores them.
        saved = {
            name: vars(self)[name]
            for name in ("n_features_in_", "feature_names_in_")
            if name in vars(self)
        }
        try:
            return self._fit(X, y)
        except BaseException:
            vars(self).pop("n_features_in_", None)
            vars(self).pop("feature_names_in_", None)
            vars(self).update(saved)
            raise

    def _fit(self, X, y):
        self._validate_params()
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
            x_mean, x_scale = self.x_mean_, self.x_scale_
            y_mean, y_scale = self.y_mean_, self.y_scale_
            # Train a copy: a failed fit must leave the fitted model untouched.
            module = copy.deepcopy(self.module_).to(device)
        else:
            x_mean, x_scale = _mean_and_scale(X)
            y_mean, y_scale = _mean_and_scale(Y)
            module = self._init_module(X.shape[1], Y.shape[1], rng, device)
        optimizer = _adam(module.parameters(), self.learning_rate)
        if warm:
            # Its stored step size is overwritten step by step in training.
            optimizer.load_state_dict(self._optimizer_state)

        train, val = self._split(len(X), rng)
        X_t = _standardized_tensor(X, x_mean, x_scale, device)
        Y_t = _standardized_tensor(Y, y_mean, y_scale, device)
        if val is not None:
            val_t = torch.as_tensor(val, device=device)
            train_t = torch.as_tensor(train, device=device)
            X_val, Y_val = X_t[val_t], Y_t[val_t]
            X_t, Y_t = X_t[train_t], Y_t[train_t]
        else:
            X_val = Y_val = None
        generator = torch_generator(rng, device=device)

        history = self._train(module, optimizer, X_t, Y_t, X_val, Y_val, generator)

        # Only now, after training succeeded, does the estimator change.
        self.x_mean_, self.x_scale_ = x_mean, x_scale
        self.y_mean_, self.y_scale_ = y_mean, y_scale
        self.n_outputs_ = Y.shape[1]
        self._y_is_1d = y.ndim == 1
        self.module_ = module.eval()
        self._optimizer_state = optimizer.state_dict()
        self._record_history(history, warm)
        return self

    def _record_history(self, history, warm):
        """Set the loss and validation attributes; warm starts extend them."""
        if not warm:
            self.loss_curve_, self.validation_scores_, self.n_iter_ = [], None, 0
        self.loss_curve_ = self.loss_curve_ + history["loss"]
        self.n_iter_ += len(history["loss"])
        if self.early_stopping:
            scores = (self.validation_scores_ or []) + history["val_score"]
            self.validation_scores_ = scores
            self.best_validation_score_ = max(history["val_score"])
            self.best_loss_ = None
        else:
            self.validation_scores_ = self.best_validation_score_ = None
            self.best_loss_ = min(self.loss_curve_)

    def _init_module(self, n_features, n_outputs, rng, device):
        """Build the module with weights drawn from ``rng``, not torch's global RNG."""
        seed = torch_seed(rng)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            module = self._build_module(n_features, n_outputs)
        return module.to(device)

    def _split(self, n_samples, rng):
        """Return training and validation row indices (validation None if unused)."""
        if not self.early_stopping:
            return None, None
        n_val = int(np.ceil(self.validation_fraction * n_samples))
        if n_val < 2 or n_samples - n_val < 1:
            raise ValueError(
                f"The validation set would have {n_val} of {n_samples} samples; "
                "early_stopping needs at least 2 validation and 1 training "
                "sample. Increase validation_fraction or the number of samples."
            )
        order = rng.permutation(n_samples)
        return np.sort(order[n_val:]), np.sort(order[:n_val])

    def _train(self, module, optimizer, X, Y, X_val, Y_val, generator):
        """Run the epochs; return the loss (and validation score) per epoch.

        Raises ValueError when the loss diverges. A KeyboardInterrupt stops
        training with a warning and keeps the weights reached so far.
        """
        history = {"loss": [], "val_score": []}
        n_samples = X.shape[0]
        batch_size = min(self.batch_size, n_samples)
        n_batches = math.ceil(n_samples / batch_size)
        rate_at = self._schedule(self.max_iter * n_batches)
        best_score, best_state, n_bad = -np.inf, None, 0
        stop_reason = None
        start = time.perf_counter()
        module.train()
        try:
            for epoch in range(self.max_iter):
                loss = self._train_epoch(
                    module,
                    optimizer,
                    X,
                    Y,
                    batch_size,
                    generator,
                    [rate_at(epoch * n_batches + i) for i in range(n_batches)],
                )
                if not loss < _DIVERGED_LOSS:  # also catches NaN
                    _raise_diverged(self.learning_rate, len(history["loss"]) + 1)
                history["loss"].append(loss)
                if X_val is not None:
                    score = _r2_score(_forward(module, X_val), Y_val)
                    history["val_score"].append(score)
                    improved = score > best_score + self.tol
                    if score > best_score:
                        best_score = score
                        best_state = copy.deepcopy(module.state_dict())
                else:
                    improved = (
                        loss < min(history["loss"][:-1], default=np.inf) - self.tol
                    )
                n_bad = 0 if improved else n_bad + 1
                if self.verbose:
                    self._print_progress(epoch, history, start)
                if n_bad > self.n_iter_no_change:
                    stop_reason = "converged"
                    break
        except KeyboardInterrupt:
            stop_reason = "interrupted"
            self._stop_on_interrupt(module, history, X, Y, X_val, Y_val)
        if best_state is not None:
            module.load_state_dict(best_state)
        if stop_reason is None:
            warnings.warn(
                f"Maximum iterations ({self.max_iter}) reached and the "
                "optimization hasn't converged yet.",
                ConvergenceWarning,
                stacklevel=4,  # the caller of fit
            )
        return history

    def _stop_on_interrupt(self, module, history, X, Y, X_val, Y_val):
        """Warn, and make sure the weights reached are usable and recorded."""
        warnings.warn(
            f"Training interrupted by user after {len(history['loss'])} "
            "complete epochs; keeping the weights reached so far.",
            UserWarning,
            stacklevel=5,  # the caller of fit
        )
        # The interrupt can land in a diverging epoch: never keep NaN weights.
        if not all(torch.isfinite(p).all() for p in module.parameters()):
            _raise_diverged(self.learning_rate, len(history["loss"]) + 1)
        if not history["loss"]:
            # No complete epoch: record the loss of the weights reached.
            loss = torch.nn.functional.mse_loss(_forward(module, X), Y)
            history["loss"].append(loss.item())
            if X_val is not None:
                history["val_score"].append(_r2_score(_forward(module, X_val), Y_val))

    def _schedule(self, n_steps):
        """Return ``rate_at(step)``: Adam's step size at each step of this fit."""
        return functools.partial(
            learning_rate_at,
            learning_rate=self.learning_rate,
            n_iter=n_steps,
            lr_schedule=self.lr_schedule,
        )

    def _train_epoch(self, module, optimizer, X, Y, batch_size, generator, rates):
        """One pass over shuffled mini-batches; return the mean training loss.

        ``rates`` holds the learning rate of each mini-batch of the epoch.
        """
        n_samples = X.shape[0]
        if self.shuffle:
            order = torch.randperm(n_samples, generator=generator, device=X.device)
        else:
            order = torch.arange(n_samples, device=X.device)
        total = torch.zeros((), device=X.device)
        for start, rate in zip(range(0, n_samples, batch_size), rates, strict=True):
            for group in optimizer.param_groups:
                group["lr"] = rate
            rows = order[start : start + batch_size]
            loss = torch.nn.functional.mse_loss(module(X[rows]), Y[rows])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            # Accumulate on the device: no host sync per batch.
            total += loss.detach() * len(rows)
        return total.item() / n_samples

    def _print_progress(self, epoch, history, start):
        message = f"Epoch {epoch + 1}/{self.max_iter}, loss = {history['loss'][-1]:.6g}"
        if history["val_score"]:
            message += f", validation score = {history['val_score'][-1]:.6g}"
        print(f"{message} ({time.perf_counter() - start:.1f} s)")

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
        X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
        device = resolve_device(self.device)
        # The device may have been changed (e.g. after unpickling on a GPU box).
        self.module_.to(device)
        out = np.empty((X.shape[0], self.n_outputs_), dtype=np.float64)
        with torch.inference_mode():
            for start in range(0, X.shape[0], _PREDICT_CHUNK):
                chunk = slice(start, start + _PREDICT_CHUNK)
                X_t = _standardized_tensor(
                    X[chunk], self.x_mean_, self.x_scale_, device
                )
                out[chunk] = self.module_(X_t).cpu().numpy()
        out = out * self.y_scale_ + self.y_mean_
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
        if "_optimizer_state" in state:
            state["_optimizer_state"] = to_cpu(state["_optimizer_state"])
        return state

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags


def _adam(parameters, learning_rate):
    """Adam, fused into one kernel per step where this torch supports it."""
    parameters = list(parameters)
    try:
        # About 15 % faster steps for small networks on CPU (torch >= 2.4).
        return torch.optim.Adam(parameters, lr=learning_rate, fused=True)
    except RuntimeError:
        return torch.optim.Adam(parameters, lr=learning_rate)


def _mean_and_scale(A):
    """Column means and standard deviations (1 for constant columns)."""
    scaler = StandardScaler().fit(A)
    return scaler.mean_, scaler.scale_


def _raise_diverged(learning_rate, epoch):
    raise ValueError(
        f"Training diverged (loss non-finite or above {_DIVERGED_LOSS:g}) in "
        f"epoch {epoch} with learning_rate={learning_rate}; try a lower learning_rate. "
        "The estimator was left as it was before fit."
    )


_COMMON_PARAMETERS = """learning_rate : float, default=1e-3
        Adam's step size (the peak of the schedule). Finn et al. (2024) train
        from scratch with 5e-5, constant, on 1.6e7 samples; small data sets
        need larger steps.
    lr_schedule : {"constant", "cosine"}, default="constant"
        How the step size changes over the ``max_iter`` epochs of each call
        to ``fit``, batch by batch: ``"constant"`` keeps ``learning_rate``;
        ``"cosine"`` decays it from ``learning_rate`` towards zero along half
        a cosine, reaching zero at the end of epoch ``max_iter``. Decaying
        the step size removes the noise floor that Adam's error sits on at a
        constant rate, so with a fixed number of epochs ``"cosine"`` with a
        larger peak (e.g. 3e-3) is more accurate; see Notes. It only
        finishes its decay when training runs all ``max_iter`` epochs: the
        stopping rule (``tol``, ``n_iter_no_change``, ``early_stopping``)
        can end it sooner, so set ``tol=0`` for a fixed budget. With
        ``warm_start``, each ``fit`` runs the whole schedule again.
    batch_size : int, default=256
        Samples per mini-batch; clipped to the number of training samples.
    max_iter : int, default=200
        Maximum number of epochs (passes over the training data).
    shuffle : bool, default=True
        Whether to reshuffle the samples before each epoch.
    early_stopping : bool, default=False
        Whether to hold out ``validation_fraction`` of the data, stop when
        its R^2 score stops improving, and keep the weights of the best epoch.
        When False, training stops when the training loss stops improving.
    validation_fraction : float, default=0.1
        Fraction of the training samples held out for early stopping (drawn
        at random, rounded up). Only used when ``early_stopping`` is True.
    n_iter_no_change : int, default=10
        Training stops after more than this many consecutive epochs that
        improve the monitored quantity by less than ``tol``.
    tol : float, default=1e-4
        Smallest improvement of the loss (or validation score) that counts.
    random_state : int, RandomState instance or None, default=None
        Seeds the initial weights, the validation split and the shuffling.
        An int makes two fits give identical models on the same device.
    device : str or torch.device, default="auto"
        Where to train and predict: ``"auto"`` (a GPU if available, else
        the CPU), ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ... It may be changed
        with ``set_params`` after fitting or unpickling; the next ``predict``
        moves the network there.
    verbose : int or bool, default=0
        Print the loss after each epoch when positive.
    warm_start : bool, default=False
        Whether ``fit`` continues from the previous solution (weights,
        optimiser state and standardisation) instead of starting afresh.
        An int ``random_state`` makes every such call shuffle in the same
        order; pass a ``RandomState`` instance for a new order each call."""

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
        Mean squared error on the standardised training targets, per epoch.
    best_loss_ : float or None
        Smallest value of ``loss_curve_``; None with early stopping.
    validation_scores_ : list of float or None
        R^2 on the validation set per epoch; None without early stopping.
    best_validation_score_ : float or None
        Best validation R^2 of the last fit (its weights are kept); None
        without early stopping.
    n_iter_ : int
        Number of epochs run, summed over warm-started fits.
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

    A diverging fit (training loss non-finite, or above 1e6, a million times
    the loss of predicting the mean) raises a ``ValueError`` suggesting
    a lower ``learning_rate`` and leaves the estimator as it was before ``fit``.
    Interrupting ``fit`` (Ctrl-C) warns and keeps the weights reached so far
    (the best ones with early stopping), so the model can still be used.

    Pickles hold the network on the CPU: a model fitted on a GPU loads on a
    machine without one.

    With a fixed number of epochs the step-size schedule matters as much as
    the network's speed: on the Lorenz 1963 surrogate task, with the epochs
    that fit in 15 s on one CPU thread, ``lr_schedule="cosine"`` with
    ``learning_rate=3e-3`` gave a validation nRMSE 1.2 to 2.4 times lower
    than the best constant rate of 3e-4, 1e-3 and 3e-3 (batches of 256);
    ``benchmarks/bench_neural.py`` races it against
    :class:`sklearn.neural_network.MLPRegressor`, whose Adam has no schedule.
    The default stays ``"constant"``: the default stopping rule ends such
    training long before ``max_iter`` (after 17 to 19 of 200 epochs on
    20 000 Lorenz 1963 pairs), where a cosine decay has barely begun and no
    consistent difference was measured, and warm-started fits of a few
    epochs each would restart the decay at every call."""


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
        max_iter=200,
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
        self.learning_rate = learning_rate
        self.lr_schedule = lr_schedule
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.random_state = random_state
        self.device = device
        self.verbose = verbose
        self.warm_start = warm_start

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
        max_iter=200,
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
        self.learning_rate = learning_rate
        self.lr_schedule = lr_schedule
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.random_state = random_state
        self.device = device
        self.verbose = verbose
        self.warm_start = warm_start

    def _build_module(self, n_features, n_outputs):
        return _ResidualNet(
            n_features, self.n_hidden, self.n_blocks, n_outputs, self.layer_scale
        )
