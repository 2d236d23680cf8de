"""A plain training loop for the denoiser: Adam on the MSE of the prediction.

Each optimiser step draws a batch of clean states x, steps t uniformly in
1..T and noise eps, forms ``z = sqrt(alpha_bar[t]) x + sigma[t] eps`` and
regresses the network output on the target of the parameterisation.
"""

import functools
import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch.func import functional_call

from .parameterization import check_parameterization, loss_target

__all__ = [
    "LR_SCHEDULES",
    "T_SAMPLINGS",
    "TrainingDivergedError",
    "TrainingHistory",
    "denoising_loss",
    "fast_autocast_dtype",
    "learning_rate_at",
    "step_probabilities",
    "train_denoiser",
]

LR_SCHEDULES = ("constant", "cosine")
T_SAMPLINGS = ("uniform", "low")

# A loss this many times above the first loss of a run (or above 1, the
# order of the loss on standardised data) means it is exploding.
_EXPLOSION_FACTOR = 1e4


class TrainingDivergedError(FloatingPointError, ValueError):
    """The training loss became non-finite or exploded."""


@dataclass
class TrainingHistory:
    """What `train_denoiser` records; filled in place, so it survives interrupts.

    Attributes
    ----------
    loss_curve : list of float
        Mean training loss over each interval of `eval_every` steps.
    validation_scores : list of float
        Negative validation loss after each interval (higher is better);
        empty without validation data.
    n_iter : int
        Optimiser steps taken, summed over every call given this history.
    best_score : float
        Best score seen for early stopping (validation score, or negative
        training loss without validation data).
    n_evals_no_change : int
        Evaluations since the score last improved by more than `tol`.
    stopped_early : bool
        Whether the last call stopped on a plateau.
    optimizer : torch.optim.Optimizer or None
        The optimiser; its ``state_dict()`` continues a run (warm start).
    ema : dict of str to torch.Tensor or None
        Exponential moving average of each named parameter, when `ema_decay`
        is set. The model itself always holds the raw weights.
    """

    loss_curve: list = field(default_factory=list)
    validation_scores: list = field(default_factory=list)
    n_iter: int = 0
    best_score: float = -math.inf
    n_evals_no_change: int = 0
    stopped_early: bool = False
    optimizer: torch.optim.Optimizer | None = None
    ema: dict | None = None


def fast_autocast_dtype(device):
    """``torch.bfloat16`` if bfloat16 matrix products are fast on `device`, else None.

    That is a CUDA GPU supporting bfloat16, or a CPU with AVX512-BF16 or AMX.
    Pass the result as `autocast_dtype` to `train_denoiser`.
    """
    device = torch.device(device)
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else None
    if device.type == "cpu":
        checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
        if any(getattr(torch.cpu, name, lambda: False)() for name in checks):
            return torch.bfloat16
    return None


def _generator_device(generator, device):
    return device if generator is None else generator.device


def _randn(shape, generator, device, dtype):
    noise = torch.randn(
        shape,
        generator=generator,
        device=_generator_device(generator, device),
        dtype=dtype,
    )
    return noise.to(device)


def _randint(high, shape, generator, device):
    steps = torch.randint(
        1,
        high + 1,
        shape,
        generator=generator,
        device=_generator_device(generator, device),
    )
    return steps.to(device)


def step_probabilities(t_sampling, n_steps):
    """Probability of drawing each step ``1..n_steps`` in training, float64.

    "uniform" is the paper's; "low" is proportional to ``1 / sqrt(t)``, so
    about a third of the steps fall in the lowest tenth of ``1..n_steps``
    (against a tenth when uniform): more training where the features are
    read, near the clean state.
    """
    if t_sampling not in T_SAMPLINGS:
        raise ValueError(
            f"Unknown t_sampling {t_sampling!r}; expected one of "
            f"{list(T_SAMPLINGS)}."
        )
    steps = torch.arange(1, n_steps + 1, dtype=torch.float64)
    weights = torch.ones_like(steps) if t_sampling == "uniform" else steps**-0.5
    return weights / weights.sum()


def _draw_steps(n_steps, probabilities, n, generator, device):
    """n steps in 1..n_steps; None draws uniformly (the paper's randint)."""
    if probabilities is None:
        return _randint(n_steps, (n,), generator, device)
    steps = torch.multinomial(
        probabilities.to(_generator_device(generator, device), torch.float32),
        n,
        replacement=True,
        generator=generator,
    )
    return (steps + 1).to(device)


def _randperm(n, generator, device):
    order = torch.randperm(
        n, generator=generator, device=_generator_device(generator, device)
    )
    return order.to(device)


def _noised(x, t, eps, alpha_bar):
    """Noised states and alpha_bar per row, for steps t and noise eps."""
    ab = alpha_bar[t].unsqueeze(1)
    return ab.sqrt() * x + (1.0 - ab).sqrt() * eps, ab


def _loss(
    model, x, t, eps, alpha_bar, parameterization, params=None, autocast_dtype=None
):
    z, ab = _noised(x, t, eps, alpha_bar)
    with torch.autocast(
        x.device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None
    ):
        if params is None:
            prediction = model(z, t)
        else:
            prediction = functional_call(model, params, (z, t))
    target = loss_target(parameterization, x, eps, ab)
    return F.mse_loss(prediction.to(x.dtype), target)


@torch.no_grad()
def denoising_loss(
    model,
    X,
    *,
    schedule,
    parameterization="velocity",
    t=None,
    eps=None,
    generator=None,
    batch_size=16384,
    params=None,
):
    """Mean squared error of the network's prediction on noised copies of X.

    Parameters
    ----------
    model : Denoiser
    X : torch.Tensor of shape (n_samples, n_features)
        Clean states, on the model's device.
    schedule : Schedule
    parameterization : {"velocity", "noise", "state"}, default="velocity"
    t : torch.Tensor of shape (n_samples,), default=None
        Steps; drawn uniformly from 1..T with `generator` when None.
    eps : torch.Tensor like X, default=None
        Noise; drawn from `generator` when None.
    generator : torch.Generator, default=None
    batch_size : int, default=16384
        Rows evaluated at once.
    params : dict of str to torch.Tensor, default=None
        Weights to use instead of the model's own (e.g. an EMA).

    Returns
    -------
    float
        The loss, averaged over samples and features.
    """
    check_parameterization(parameterization)
    alpha_bar = schedule.alpha_bar.to(device=X.device, dtype=X.dtype)
    if t is None:
        t = _randint(schedule.n_steps, (X.shape[0],), generator, X.device)
    if eps is None:
        eps = _randn(X.shape, generator, X.device, X.dtype)
    total = 0.0
    for start in range(0, X.shape[0], batch_size):
        rows = slice(start, start + batch_size)
        loss = _loss(
            model, X[rows], t[rows], eps[rows], alpha_bar, parameterization, params
        )
        total += loss.item() * X[rows].shape[0]
    return total / X.shape[0]


def learning_rate_at(
    step, *, learning_rate, n_iter, lr_schedule="constant", warmup_iters=0
):
    """Learning rate at optimiser step `step` (0-based) of an `n_iter`-step run.

    Linear warm-up over `warmup_iters` steps, then constant or a cosine decay
    to zero at `n_iter`.
    """
    if step < warmup_iters:
        return learning_rate * (step + 1) / warmup_iters
    if lr_schedule == "constant":
        return learning_rate
    progress = (step - warmup_iters) / max(n_iter - warmup_iters, 1)
    return learning_rate * 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))


def _check_arguments(
    n_iter,
    batch_size,
    learning_rate,
    lr_schedule,
    warmup_iters,
    ema_decay,
    eval_every,
    patience,
    autocast_dtype,
):
    def positive_int(name, value, minimum=1):
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}.")

    positive_int("n_iter", n_iter, 0)
    positive_int("batch_size", batch_size)
    positive_int("warmup_iters", warmup_iters, 0)
    positive_int("eval_every", eval_every)
    if patience is not None:
        positive_int("patience", patience)
    if not learning_rate > 0:
        raise ValueError(f"learning_rate must be positive, got {learning_rate!r}.")
    if lr_schedule not in LR_SCHEDULES:
        raise ValueError(
            f"Unknown lr_schedule {lr_schedule!r}; expected one of "
            f"{list(LR_SCHEDULES)}."
        )
    if autocast_dtype not in (None, torch.bfloat16, torch.float16):
        raise ValueError(
            "autocast_dtype must be None, torch.bfloat16 or torch.float16, got "
            f"{autocast_dtype!r}."
        )
    if ema_decay is not None and not 0.0 <= ema_decay < 1.0:
        raise ValueError(f"ema_decay must be in [0, 1) or None, got {ema_decay!r}.")


class _Batches:
    """Endless minibatches of the rows of X, reshuffled every epoch."""

    def __init__(self, X, batch_size, generator):
        self.X, self.batch_size, self.generator = X, batch_size, generator
        self.order, self.position = None, X.shape[0]

    def next(self):
        n = self.X.shape[0]
        if self.batch_size >= n:
            return self.X
        if self.position + self.batch_size > n:
            self.order = _randperm(n, self.generator, self.X.device)
            self.position = 0
        rows = self.order[self.position : self.position + self.batch_size]
        self.position += self.batch_size
        return self.X[rows]


def train_denoiser(
    model,
    X,
    *,
    schedule,
    parameterization="velocity",
    n_iter=1000,
    batch_size=16384,
    learning_rate=3e-4,
    lr_schedule="constant",
    warmup_iters=0,
    ema_decay=None,
    X_val=None,
    eval_every=100,
    patience=None,
    tol=1e-4,
    generator=None,
    callback=None,
    verbose=0,
    optimizer_state=None,
    ema_state=None,
    history=None,
    autocast_dtype=None,
    t_sampling="uniform",
):
    """Train `model` in place with Adam on the denoising loss.

    Parameters
    ----------
    model : Denoiser
        Trained in place; must be on the device of X.
    X : torch.Tensor of shape (n_samples, n_features)
        Clean (standardised) training states, float32.
    schedule : Schedule
    parameterization : {"velocity", "noise", "state"}, default="velocity"
        What the network predicts.
    n_iter : int, default=1000
        Number of optimiser steps of this call (0 trains nothing).
    batch_size : int, default=16384
        States per step, drawn without replacement within each epoch
        (capped at n_samples).
    learning_rate : float, default=3e-4
        Peak learning rate of Adam.
    lr_schedule : {"constant", "cosine"}, default="constant"
        Constant, or a cosine decay to zero at the end of this call.
    warmup_iters : int, default=0
        Steps of linear warm-up before the schedule.
    ema_decay : float, default=None
        Keep an exponential moving average of the weights in
        ``history.ema`` (the model keeps the raw weights). Validation
        scores then use the EMA weights.
    X_val : torch.Tensor of shape (n_val, n_features), default=None
        Validation states, scored every `eval_every` steps with noise drawn
        once per call, so scores within a call are comparable.
    eval_every : int, default=100
        Steps between evaluations (loss curve point, validation, callback,
        progress line, early-stopping check).
    patience : int, default=None
        Stop after this many evaluations without an improvement of more than
        `tol` in the validation score (or in the negative training loss
        without `X_val`). None never stops early.
    tol : float, default=1e-4
        Smallest improvement that counts.
    generator : torch.Generator, default=None
        Source of all randomness (batches, steps, noise); seed it for
        reproducible runs. It may live on another device than X.
    callback : callable, default=None
        Called as ``callback(info)`` after each evaluation with a dict of
        ``iter``, ``loss``, ``validation_score`` (or None) and ``lr``.
    verbose : int, default=0
        Print a progress line at each evaluation when positive.
    optimizer_state : dict, default=None
        ``history.optimizer.state_dict()`` of an earlier run, to continue it.
    ema_state : dict of str to torch.Tensor, default=None
        ``history.ema`` of an earlier run, to continue its average.
    history : TrainingHistory, default=None
        Appended to in place (pass the previous one to continue its curves);
        a new one when None.
    autocast_dtype : torch.dtype, default=None
        None trains in the dtype of X (float32). ``torch.bfloat16`` runs the
        network under ``torch.autocast`` (mixed precision: matrix products in
        bfloat16; weights, optimiser, residual stream and loss in float32),
        about 1.5-2x faster on CPUs with AVX512-BF16/AMX and on recent GPUs,
        slower on CPUs without bfloat16 instructions.
    t_sampling : {"uniform", "low"}, default="uniform"
        How the training steps are drawn: uniformly in ``1..T`` (the paper)
        or with probability proportional to ``1 / sqrt(t)``, which trains
        more near the clean states where features are usually read; see
        `step_probabilities`. Validation always draws uniformly.

    Returns
    -------
    TrainingHistory
        The history, also holding the optimiser and the EMA weights.

    Raises
    ------
    TrainingDivergedError
        If the loss becomes non-finite or exceeds 1e4 times the larger of
        the run's first loss and 1; raised before the offending step is
        applied.

    Notes
    -----
    A KeyboardInterrupt between steps leaves the model with the raw weights
    of the last completed step, and `history` up to date.
    """
    check_parameterization(parameterization)
    _check_arguments(
        n_iter,
        batch_size,
        learning_rate,
        lr_schedule,
        warmup_iters,
        ema_decay,
        eval_every,
        patience,
        autocast_dtype,
    )
    if X.ndim != 2 or X.shape[0] == 0:
        raise ValueError(
            f"X must be a non-empty 2-D tensor, got shape {tuple(X.shape)}."
        )
    history = TrainingHistory() if history is None else history
    history.stopped_early = False
    alpha_bar = schedule.alpha_bar.to(device=X.device, dtype=X.dtype)
    probabilities = step_probabilities(t_sampling, schedule.n_steps)
    if t_sampling == "uniform":
        probabilities = None  # keep the paper's draws exactly

    optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate)
    if optimizer_state is not None:
        optimizer.load_state_dict(optimizer_state)
    history.optimizer = optimizer
    names, params = zip(*model.named_parameters(), strict=True)
    ema = None
    if ema_decay is not None:
        source = (
            ema_state
            if ema_state is not None
            else dict(zip(names, params, strict=True))
        )
        ema = {
            name: torch.as_tensor(source[name])
            .detach()
            .to(device=param.device, dtype=param.dtype)
            .clone()
            for name, param in zip(names, params, strict=True)
        }
        history.ema = ema
        ema_values = [ema[name] for name in names]

    validation_loss = None
    if X_val is not None:
        # steps and noise drawn once: every evaluation scores the same draws
        validation_loss = functools.partial(
            denoising_loss,
            model,
            X_val,
            schedule=schedule,
            parameterization=parameterization,
            t=_randint(schedule.n_steps, (X_val.shape[0],), generator, X.device),
            eps=_randn(X_val.shape, generator, X.device, X.dtype),
            batch_size=batch_size,
            params=ema,
        )

    batches = _Batches(X, batch_size, generator)
    first_loss, interval_loss, interval_steps = None, 0.0, 0
    model.train()
    for step in range(n_iter):
        lr = learning_rate_at(
            step,
            learning_rate=learning_rate,
            n_iter=n_iter,
            lr_schedule=lr_schedule,
            warmup_iters=warmup_iters,
        )
        for group in optimizer.param_groups:
            group["lr"] = lr
        x = batches.next()
        t = _draw_steps(
            schedule.n_steps, probabilities, x.shape[0], generator, X.device
        )
        eps = _randn(x.shape, generator, X.device, X.dtype)
        loss = _loss(
            model, x, t, eps, alpha_bar, parameterization, autocast_dtype=autocast_dtype
        )
        loss_value = loss.item()
        first_loss = loss_value if first_loss is None else first_loss
        limit = _EXPLOSION_FACTOR * max(first_loss, 1.0)
        if not math.isfinite(loss_value) or loss_value > limit:
            raise TrainingDivergedError(
                f"The training loss diverged ({loss_value:.3g} at step "
                f"{history.n_iter + 1}, first loss {first_loss:.3g}); try a lower "
                f"learning rate than {learning_rate:g}."
            )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if ema is not None:
            with torch.no_grad():
                torch._foreach_lerp_(ema_values, list(params), 1.0 - ema_decay)
        history.n_iter += 1
        interval_loss += loss_value
        interval_steps += 1
        if (step + 1) % eval_every and step + 1 < n_iter:
            continue
        if _evaluate(
            history,
            interval_loss / interval_steps,
            validation_loss,
            lr,
            tol=tol,
            patience=patience,
            callback=callback,
            verbose=verbose,
        ):
            history.stopped_early = True
            break
        interval_loss, interval_steps = 0.0, 0
    return history


def _evaluate(
    history, train_loss, validation_loss, lr, *, tol, patience, callback, verbose
):
    """Record an evaluation; return whether training should stop.

    `validation_loss` is None or a function of no arguments giving the loss
    on the held-out states.
    """
    history.loss_curve.append(train_loss)
    score = -train_loss
    validation_score = None
    if validation_loss is not None:
        validation_score = score = -validation_loss()
        history.validation_scores.append(validation_score)
    if score > history.best_score + tol:
        history.best_score, history.n_evals_no_change = score, 0
    else:
        history.n_evals_no_change += 1
    info = {
        "iter": history.n_iter,
        "loss": train_loss,
        "validation_score": validation_score,
        "lr": lr,
    }
    if verbose:
        line = f"iter {history.n_iter:6d}  loss {train_loss:.5f}  lr {lr:.2e}"
        if validation_score is not None:
            line += f"  validation score {validation_score:.5f}"
        print(line, flush=True)
    if callback is not None:
        callback(info)
    return patience is not None and history.n_evals_no_change >= patience
