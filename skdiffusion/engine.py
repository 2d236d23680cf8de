"""The one training loop of every torch estimator: Adam on mini-batches.

Torch only, no scikit-learn. An estimator hands :func:`train` its module, a
function giving the loss of a batch of row indices, and the number of rows;
the loop owns everything else, the same way for every estimator:

- the budget: ``max_iter`` optimiser steps (one mini-batch each) per call;
- the learning rate: linear warm-up, then constant or a cosine decay to
  zero at ``max_iter`` (:func:`learning_rate_at`);
- evaluation every ``eval_every`` steps: one point of the loss curve, one
  validation score, one progress update, one early-stopping check;
- early stopping: after ``n_iter_no_change`` evaluations in a row without an
  improvement of more than ``tol`` of the best score (None never stops);
  with a validation score, the weights of the best evaluation are kept;
- divergence: a non-finite loss, or one above 1e4 times the larger of the
  call's first loss and 1, raises :class:`TrainingDivergedError`; the final
  weights are checked too, with one more forward pass;
- randomness: every draw (batches, and the loss function's own) comes from
  one ``torch.Generator`` on the training device;
- KeyboardInterrupt stops the loop and keeps the weights reached, with
  ``history.n_iter`` counting the steps applied;
- data-parallel: inside a ``torch.distributed`` group of several processes
  (a script launched with ``torchrun``), each process computes its share of
  every global batch and the gradients are summed over the processes
  (:mod:`skdiffusion.distributed`), so the run is that of one process with
  the same ``batch_size`` up to floating-point summation order.

The loop never changes what it is given to start from (optimiser state,
EMA weights): it works on copies, so an estimator whose fit fails can keep
its previous state as it is.
"""

import contextlib
import math
from dataclasses import dataclass, field

import torch

from ._progress import progress
from .distributed import ProcessGroup

__all__ = [
    "LR_SCHEDULES",
    "TrainingDivergedError",
    "TrainingHistory",
    "adam",
    "learning_rate_at",
    "train",
]

LR_SCHEDULES = ("constant", "cosine")

# A loss this many times above the first loss of a call (or above 1, the
# order of the loss on standardised data) means training is exploding.
_EXPLOSION_FACTOR = 1e4


class TrainingDivergedError(FloatingPointError, ValueError):
    """The training loss became non-finite or exploded."""


@dataclass
class TrainingHistory:
    """What :func:`train` records; filled in place, so it survives interrupts.

    Attributes
    ----------
    loss_curve : list of float
        Mean training loss over each interval of ``eval_every`` steps.
    validation_scores : list of float
        Validation score after each interval (higher is better); empty
        without validation.
    n_iter : int
        Optimiser steps applied, summed over every call given this history.
    best_score : float
        Best score of the last call (validation score, or negative training
        loss without validation).
    n_evals_no_change : int
        Evaluations since the score last improved by more than ``tol``.
    stopped_early : bool
        Whether the last call stopped on a plateau.
    interrupted : bool
        Whether the last call was stopped by a KeyboardInterrupt.
    optimizer_state : dict or None
        A CPU copy of Adam's ``state_dict()``, to continue the run.
    ema : dict of str to torch.Tensor or None
        Exponential moving average of each named parameter, when
        ``ema_decay`` is set. The module itself always holds the raw weights.
    """

    loss_curve: list = field(default_factory=list)
    validation_scores: list = field(default_factory=list)
    n_iter: int = 0
    best_score: float = -math.inf
    n_evals_no_change: int = 0
    stopped_early: bool = False
    interrupted: bool = False
    optimizer_state: dict | None = None
    ema: dict | None = None


def learning_rate_at(
    step, *, learning_rate, max_iter, lr_schedule="constant", warmup_iter=0
):
    """Learning rate at optimiser step `step` (0-based) of a `max_iter`-step call.

    Linear warm-up over `warmup_iter` steps, then constant or a cosine decay
    to zero at `max_iter`.
    """
    if step < warmup_iter:
        return learning_rate * (step + 1) / warmup_iter
    if lr_schedule == "constant":
        return learning_rate
    progress_ = (step - warmup_iter) / max(max_iter - warmup_iter, 1)
    return learning_rate * 0.5 * (1.0 + math.cos(math.pi * min(progress_, 1.0)))


def adam(parameters, learning_rate):
    """Adam, fused into one kernel per step where this torch supports it.

    Fused steps are about 15 % faster for small networks on CPU (torch >= 2.4).
    """
    parameters = list(parameters)
    try:
        return torch.optim.Adam(parameters, lr=learning_rate, fused=True)
    except (RuntimeError, TypeError):
        return torch.optim.Adam(parameters, lr=learning_rate)


def _cpu_copy(obj):
    """`obj` with every tensor in it (nested dicts, lists) copied to the CPU."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, dict):
        return {key: _cpu_copy(value) for key, value in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(_cpu_copy(value) for value in obj)
    return obj


class _Batches:
    """Endless mini-batches of row indices, reshuffled at every pass.

    ``None`` stands for all rows when one batch holds them all. Without
    `shuffle` the rows come in order; a pass's last partial batch is skipped.
    """

    def __init__(self, n_rows, batch_size, shuffle, generator, device):
        self.n_rows, self.batch_size = n_rows, batch_size
        self.shuffle, self.generator, self.device = shuffle, generator, device
        self.order, self.position = None, n_rows

    def next(self):
        if self.batch_size >= self.n_rows:
            return None
        if self.position + self.batch_size > self.n_rows:
            self.order = self._order()
            self.position = 0
        rows = self.order[self.position : self.position + self.batch_size]
        self.position += self.batch_size
        return rows

    def _order(self):
        if not self.shuffle:
            return torch.arange(self.n_rows, device=self.device)
        device = self.device if self.generator is None else self.generator.device
        order = torch.randperm(self.n_rows, generator=self.generator, device=device)
        return order.to(self.device)


class _Ema:
    """Exponential moving average of a module's parameters, kept apart."""

    def __init__(self, module, decay, start):
        self.decay = decay
        self.names, self.params = zip(*module.named_parameters(), strict=True)
        source = dict(module.named_parameters()) if start is None else start
        self.values = {
            name: torch.as_tensor(source[name]).detach().to(param).clone()
            for name, param in zip(self.names, self.params, strict=True)
        }

    @torch.no_grad()
    def update(self):
        values = [self.values[name] for name in self.names]
        torch._foreach_lerp_(values, list(self.params), 1.0 - self.decay)

    @contextlib.contextmanager
    def swapped_in(self):
        """The module holds the averaged weights inside the block."""
        raw = [param.detach().clone() for param in self.params]
        with torch.no_grad():
            for param, name in zip(self.params, self.names, strict=True):
                param.copy_(self.values[name])
        try:
            yield
        finally:
            with torch.no_grad():
                for param, value in zip(self.params, raw, strict=True):
                    param.copy_(value)


class _Interval:
    """Sum and maximum of the losses since the last evaluation, on the device.

    Kept on the device so that a step needs no host synchronisation; the
    divergence test reads them once per evaluation.
    """

    def __init__(self):
        self.total = self.largest = None
        self.steps = 0

    def add(self, loss):
        loss = loss.detach()
        if self.total is None:
            self.total, self.largest = loss.double(), loss.clone()
        else:
            self.total += loss  # float64: the curve's means keep their digits
            torch.maximum(self.largest, loss, out=self.largest)  # NaN propagates
        self.steps += 1

    def mean(self, limit, step, learning_rate):
        """The mean loss; raise if any loss was non-finite or above `limit`."""
        largest = self.largest.item()
        if not math.isfinite(largest) or largest > limit:
            _raise_diverged(largest, step, limit, learning_rate)
        mean = self.total.item() / self.steps
        self.total = self.largest = None
        self.steps = 0
        return mean


def _raise_diverged(loss, step, limit, learning_rate):
    raise TrainingDivergedError(
        f"The training loss diverged ({loss:.3g} by step {step}, limit "
        f"{limit:.3g}); try a lower learning rate than {learning_rate:g}."
    )


def _check_arguments(max_iter, batch_size, learning_rate, lr_schedule, **counts):
    for name, (value, minimum) in {
        "max_iter": (max_iter, 0),
        "batch_size": (batch_size, 1),
        **counts,
    }.items():
        if value is None and name == "n_iter_no_change":
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}.")
    if not learning_rate > 0:
        raise ValueError(f"learning_rate must be positive, got {learning_rate!r}.")
    if lr_schedule not in LR_SCHEDULES:
        raise ValueError(
            f"Unknown lr_schedule {lr_schedule!r}; expected one of "
            f"{list(LR_SCHEDULES)}."
        )


def train(
    module,
    batch_loss,
    n_rows,
    *,
    max_iter,
    batch_size,
    learning_rate,
    lr_schedule="constant",
    warmup_iter=0,
    shuffle=True,
    ema_decay=None,
    validation_score=None,
    eval_every=100,
    n_iter_no_change=None,
    tol=1e-4,
    generator=None,
    device="cpu",
    optimizer_state=None,
    ema_state=None,
    history=None,
    callback=None,
    verbose=0,
    desc="training",
):
    """Train `module` in place with Adam; return the :class:`TrainingHistory`.

    Parameters
    ----------
    module : torch.nn.Module
        Trained in place, on `device`.
    batch_loss : callable
        ``batch_loss(rows)`` returns the scalar loss tensor of the rows
        `rows` (an index tensor on `device`, or None for all rows). It may
        draw more randomness from `generator` (e.g. diffusion noise). To
        train data-parallel it must also accept ``batch_loss(rows,
        share=share)``: the mean loss over the positions `share` (a slice)
        of the batch only, after drawing its randomness for the whole batch.
    n_rows : int
        Number of training rows.
    max_iter : int
        Optimiser steps of this call (0 trains nothing).
    batch_size : int
        Rows per step (all rows when larger).
    learning_rate : float
        Adam's peak step size.
    lr_schedule : {"constant", "cosine"}, default="constant"
    warmup_iter : int, default=0
        Steps of linear warm-up.
    shuffle : bool, default=True
        Reshuffle the rows at each pass (else take them in order).
    ema_decay : float, default=None
        Keep an exponential moving average of the weights in
        ``history.ema``; validation then scores the averaged weights.
    validation_score : callable, default=None
        ``validation_score()`` returns a float, higher is better, for the
        module's current weights. When given, it is the early-stopping
        score and the weights of its best evaluation are kept.
    eval_every : int, default=100
        Steps between evaluations.
    n_iter_no_change : int, default=None
        Stop after this many evaluations in a row without an improvement of
        more than `tol`; None never stops early.
    tol : float, default=1e-4
    generator : torch.Generator, default=None
        Source of the batches' order (and of `batch_loss`'s draws).
    device : torch.device or str, default="cpu"
    optimizer_state : dict, default=None
        ``history.optimizer_state`` of an earlier call, to continue it (read,
        never changed).
    ema_state : dict of str to torch.Tensor, default=None
        ``history.ema`` of an earlier call, to continue its average.
    history : TrainingHistory, default=None
        Appended to (pass the previous one to continue its curves).
    callback : callable, default=None
        ``callback(info)`` after each evaluation, with a dict of ``iter``,
        ``loss``, ``validation_score`` (or None) and ``lr``.
    verbose : int, default=0
        Show progress (a bar, or lines in logs) when positive.
    desc : str, default="training"
        Name shown with the progress.

    Raises
    ------
    TrainingDivergedError
        If the loss diverges, including after the last step.
    skdiffusion.distributed.DistributedTrainingError
        In data-parallel training, on every process when another raised.
    """
    _check_arguments(
        max_iter,
        batch_size,
        learning_rate,
        lr_schedule,
        warmup_iter=(warmup_iter, 0),
        eval_every=(eval_every, 1),
        n_iter_no_change=(n_iter_no_change, 1),
    )
    if ema_decay is not None and not 0.0 <= ema_decay < 1.0:
        raise ValueError(f"ema_decay must be in [0, 1) or None, got {ema_decay!r}.")
    history = TrainingHistory() if history is None else history
    history.stopped_early = history.interrupted = False
    history.best_score, history.n_evals_no_change = -math.inf, 0
    optimizer = adam(module.parameters(), learning_rate)
    if optimizer_state is not None:
        # a copy: Adam updates its state tensors in place
        optimizer.load_state_dict(_cpu_copy(optimizer_state))
    group = ProcessGroup.current(device)
    if group is not None:
        group.start(module, generator, n_rows, min(batch_size, n_rows), batch_loss)
    ema = None if ema_decay is None else _Ema(module, ema_decay, ema_state)
    run = _Run(module, optimizer, ema, batch_loss, history, validation_score)
    run.group, run.n_batch = group, min(batch_size, n_rows)
    batches = _Batches(n_rows, batch_size, shuffle, generator, device)
    rate = _rate(learning_rate, max_iter, lr_schedule, warmup_iter)
    module.train()
    with progress(
        max_iter, desc=desc, verbose=verbose, unit="step", every=eval_every
    ) as bar:
        try:
            for step in range(max_iter):
                run.step(batches.next(), rate(step))
                if (step + 1) % eval_every and step + 1 < max_iter:
                    bar.update(1)
                    continue
                info = run.evaluate(tol, rate(step), learning_rate)
                bar.set_postfix_str(_describe(info), refresh=False)
                bar.update(1)
                if callback is not None:
                    callback(info)
                if run.plateau(n_iter_no_change):
                    history.stopped_early = True
                    break
        except KeyboardInterrupt:
            history.interrupted = True
    run.finish(generator, learning_rate)
    history.optimizer_state = _cpu_copy(optimizer.state_dict())
    history.ema = None if ema is None else ema.values
    return history


def _rate(learning_rate, max_iter, lr_schedule, warmup_iter):
    def rate(step):
        return learning_rate_at(
            step,
            learning_rate=learning_rate,
            max_iter=max_iter,
            lr_schedule=lr_schedule,
            warmup_iter=warmup_iter,
        )

    return rate


def _describe(info):
    text = f"loss {info['loss']:.4g}"
    if info["validation_score"] is not None:
        text += f", validation {info['validation_score']:.4g}"
    return text


class _Run:
    """The state of one call of :func:`train`: steps, evaluations, the end."""

    def __init__(self, module, optimizer, ema, batch_loss, history, validation):
        self.module, self.optimizer, self.ema = module, optimizer, ema
        self.batch_loss, self.history, self.validation = batch_loss, history, validation
        self.interval, self.limit = _Interval(), None
        self.last_rows, self.stepped, self.best_state = None, False, None
        # set by train() when data-parallel
        self.group, self.n_batch = None, None
        self.trained = [p for p in module.parameters() if p.requires_grad]

    def step(self, rows, lr):
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.optimizer.zero_grad(set_to_none=True)
        if self.group is None:
            loss = self.batch_loss(rows)
            self._check_first(loss, lr)
            loss.backward()
        else:
            loss = self.group.loss_and_gradients(
                self.batch_loss, rows, self.n_batch, self.trained
            )
            self._check_first(loss, lr)
        self.optimizer.step()
        self.history.n_iter += 1
        if self.ema is not None:
            self.ema.update()
        self.interval.add(loss)
        self.last_rows, self.stepped = rows, True

    def _check_first(self, loss, lr):
        if self.limit is None:  # the call's first loss sets the limit
            first = loss.item()
            self.limit = _EXPLOSION_FACTOR * max(first, 1.0)
            if not math.isfinite(first):
                _raise_diverged(first, self.history.n_iter + 1, self.limit, lr)

    def evaluate(self, tol, lr, learning_rate):
        history = self.history
        train_loss = self.interval.mean(self.limit, history.n_iter, learning_rate)
        history.loss_curve.append(train_loss)
        score, validation_score = -train_loss, None
        if self.validation is not None:
            with self._scored_weights():
                validation_score = score = self._validation_score()
            history.validation_scores.append(validation_score)
            if score > history.best_score:
                self.best_state = self._snapshot()
        if score > history.best_score + tol:
            history.n_evals_no_change = 0
        else:
            history.n_evals_no_change += 1
        history.best_score = max(history.best_score, score)
        return {
            "iter": history.n_iter,
            "loss": train_loss,
            "validation_score": validation_score,
            "lr": lr,
        }

    def _validation_score(self):
        if self.group is None:
            return float(self.validation())
        # process 0 decides, so every process stops and keeps the same weights
        return self.group.decided(self.validation)

    def plateau(self, n_iter_no_change):
        return (
            n_iter_no_change is not None
            and self.history.n_evals_no_change >= n_iter_no_change
        )

    def finish(self, generator, learning_rate):
        """Check the weights the last step left, then restore the best ones."""
        if self.interval.steps and self.history.interrupted:
            self.interval.mean(self.limit, self.history.n_iter, learning_rate)
        if self.stepped:
            loss = self._final_loss(generator)
            if not math.isfinite(loss) or loss > self.limit:
                _raise_diverged(loss, self.history.n_iter, self.limit, learning_rate)
        if self.best_state is not None:
            self._restore(self.best_state)
        if self.group is not None:  # identical copies, bit for bit
            self.group.broadcast_module(self.module)

    def _final_loss(self, generator):
        """The loss of the last batch under the final weights, drawing nothing.

        The generator's state is put back, so a continued run draws exactly
        what one longer run would.
        """
        state = None if generator is None else generator.get_state()
        with torch.no_grad(), torch.random.fork_rng(devices=[]):
            if self.group is None:
                loss = self.batch_loss(self.last_rows).item()
            else:
                loss = self.group.loss(self.batch_loss, self.last_rows, self.n_batch)
        if generator is not None:
            generator.set_state(state)
        return loss

    def _scored_weights(self):
        return contextlib.nullcontext() if self.ema is None else self.ema.swapped_in()

    def _snapshot(self):
        module = {k: v.detach().clone() for k, v in self.module.state_dict().items()}
        ema = None
        if self.ema is not None:
            ema = {k: v.clone() for k, v in self.ema.values.items()}
        return module, ema

    def _restore(self, state):
        module, ema = state
        self.module.load_state_dict(module)
        if ema is not None:
            for name, value in ema.items():
                self.ema.values[name].copy_(value)
