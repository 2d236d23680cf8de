"""Data-parallel training over the processes of a ``torch.distributed`` group.

Torch only, no scikit-learn. When a script launched with ``torchrun`` has
called ``torch.distributed.init_process_group``, the training loop
(:func:`skdiffusion.engine.train`) of every torch estimator runs
data-parallel through :class:`ProcessGroup`:

- every process holds the same training rows and draws the same global
  mini-batch (and the same diffusion noise) from the same generator, whose
  state process 0 sends to the others at the start; so the global batch,
  the learning-rate schedule and every random draw are those of one process
  with the same ``batch_size``;
- each process computes the loss of its contiguous share of the batch; the
  gradients, weighted by the share's size, are summed over the processes
  with one ``all_reduce`` per step that also carries the loss and a failure
  flag per process;
- process 0's validation score is sent to the others, so every process takes
  the same early-stopping and best-weights decisions;
- an exception in one process's step makes every process raise (the others
  :class:`DistributedTrainingError`, naming the process that failed) at the
  same step, instead of waiting for it forever.

Why an explicit ``all_reduce`` rather than
:class:`torch.nn.parallel.DistributedDataParallel`: the estimators' loss
functions call their module directly (a DDP wrapper only reduces gradients
of forward passes made through it); one flat reduction per step can carry
the loss and the failure flags with the gradients (DDP would need two more
collectives per step for those); and for the package's small networks
(0.5-1.3 M parameters) there is little backward pass to overlap the
communication with. ``benchmarks/bench_distributed.py`` times both.
"""

import inspect

import torch
import torch.distributed as dist

__all__ = ["DistributedTrainingError", "ProcessGroup", "is_distributed"]


class DistributedTrainingError(RuntimeError):
    """Another process of a data-parallel run failed, or could not be reached."""


def is_distributed():
    """Whether a ``torch.distributed`` group of more than one process is running."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def share_of(n_rows, rank, world_size):
    """The slice of `n_rows` batch positions that process `rank` computes.

    Contiguous, in rank order, sizes differing by at most one.
    """
    return slice(n_rows * rank // world_size, n_rows * (rank + 1) // world_size)


class ProcessGroup:
    """The collectives one data-parallel call of the training loop needs.

    Parameters
    ----------
    device : torch.device
        The training device. With the NCCL backend the collectives run on it
        (a CUDA device); otherwise on the CPU.
    """

    def __init__(self, device):
        self.rank, self.size = dist.get_rank(), dist.get_world_size()
        nccl = dist.get_backend() == "nccl"
        self.device = torch.device(device) if nccl else torch.device("cpu")

    @classmethod
    def current(cls, device):
        """The running group, or None when training is not distributed."""
        return cls(device) if is_distributed() else None

    # --- the start ---------------------------------------------------------

    def start(self, module, generator, n_rows, n_batch, batch_loss):
        """Check the processes agree, then give them process 0's weights and draws."""
        if n_batch < self.size:
            raise ValueError(
                f"A batch of {n_batch} rows cannot be shared by {self.size} "
                "processes; use a batch_size of at least the number of processes."
            )
        parameters = inspect.signature(batch_loss).parameters
        accepts_kwargs = any(p.kind is p.VAR_KEYWORD for p in parameters.values())
        if "share" not in parameters and not accepts_kwargs:
            raise TypeError(
                "batch_loss must accept a 'share' keyword (a slice of the batch "
                "positions this process computes) to train data-parallel."
            )
        counts = torch.tensor([n_rows, -n_rows], dtype=torch.float64)
        counts = self._collect(counts, dist.ReduceOp.MAX)
        if counts[0] != -counts[1]:
            raise ValueError(
                "Every process must train on the same rows; got n_rows from "
                f"{int(-counts[1])} to {int(counts[0])} across processes."
            )
        self.broadcast_module(module)
        if generator is not None:
            state = self._broadcast(generator.get_state())
            generator.set_state(state.to("cpu", torch.uint8))

    def broadcast_module(self, module):
        """Copy process 0's parameters and buffers into every process's module."""
        with torch.no_grad():
            for tensor in module.state_dict().values():
                tensor.copy_(self._broadcast(tensor))

    # --- a step --------------------------------------------------------------

    def loss_and_gradients(self, batch_loss, rows, n_batch, parameters):
        """The global batch's loss, with its gradient in every parameter's ``.grad``.

        This process computes the loss of its share of the `n_batch` rows,
        weighted by the share's size; one ``all_reduce`` sums the gradients,
        the weighted losses and the failure flags over the processes.
        """
        share = share_of(n_batch, self.rank, self.size)
        weight = (share.stop - share.start) / n_batch
        error = None
        try:
            loss = batch_loss(rows, share=share) * weight
            loss.backward()
            loss = loss.detach()
        except Exception as caught:  # reported to every process below
            error, loss = caught, torch.zeros(())
        grads = [torch.zeros_like(p) if p.grad is None else p.grad for p in parameters]
        flat = torch.cat(
            [g.reshape(-1) for g in grads]
            + [loss.reshape(1).to(grads[0]), self._flags(error, grads[0])]
        )
        flat = self._collect(flat, dist.ReduceOp.SUM)
        self._raise_failures(flat[-self.size :], error, "a training step")
        offset = 0
        for parameter, grad in zip(parameters, grads, strict=True):
            size = grad.numel()
            parameter.grad = flat[offset : offset + size].view_as(grad).to(grad)
            offset += size
        return flat[offset]

    def loss(self, batch_loss, rows, n_batch):
        """The global batch's loss without gradients (the final check)."""
        share = share_of(n_batch, self.rank, self.size)
        weight = (share.stop - share.start) / n_batch
        error, loss = None, torch.zeros((), dtype=torch.float64)
        try:
            with torch.no_grad():
                loss = batch_loss(rows, share=share).detach().double().cpu() * weight
        except Exception as caught:
            error = caught
        flat = torch.cat([loss.reshape(1), self._flags(error, loss)])
        flat = self._collect(flat, dist.ReduceOp.SUM)
        self._raise_failures(flat[1:], error, "the final loss")
        return float(flat[0])

    def decided(self, compute):
        """Process 0's value of ``compute()`` (a float), on every process."""
        error, value = None, 0.0
        if self.rank == 0:
            try:
                value = float(compute())
            except Exception as caught:
                error = caught
        message = torch.tensor([value, error is not None], dtype=torch.float64)
        value, failed = self._broadcast(message).tolist()
        if failed:
            if error is not None:
                raise error
            raise DistributedTrainingError(
                "Process 0 raised while scoring the validation set; see its traceback."
            )
        return value

    # --- plumbing ------------------------------------------------------------

    def _flags(self, error, like):
        flags = torch.zeros(self.size, dtype=like.dtype, device=like.device)
        flags[self.rank] = error is not None
        return flags

    def _raise_failures(self, flags, error, where):
        failed = [rank for rank, flag in enumerate(flags.tolist()) if flag]
        if not failed:
            return
        if error is not None:
            raise error
        raise DistributedTrainingError(
            f"Process(es) {failed} of {self.size} raised during {where}; see "
            "their traceback. Every process stops here."
        )

    def _collect(self, tensor, op):
        """``all_reduce`` of `tensor`, on the collective device, returned as a copy."""
        work = tensor.to(self.device, copy=True)
        try:
            dist.all_reduce(work, op=op)
        except RuntimeError as error:
            raise DistributedTrainingError(
                f"Lost contact with the other processes ({error}); one of them "
                "probably died: see its output."
            ) from error
        return work.to(tensor.device)

    def _broadcast(self, tensor):
        """Process 0's copy of `tensor`, on `tensor`'s device."""
        work = tensor.detach().to(self.device, copy=True)
        try:
            dist.broadcast(work, src=0)
        except RuntimeError as error:
            raise DistributedTrainingError(
                f"Lost contact with the other processes ({error}); one of them "
                "probably died: see its output."
            ) from error
        return work.to(tensor.device)
