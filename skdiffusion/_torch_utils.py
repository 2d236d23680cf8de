"""Torch plumbing shared by the estimators: device, seeds, CPU-only state.

The estimators keep torch inside: they take and return numpy arrays, choose
their device with ``device="auto"``, draw every random number from
``random_state``, and pickle to a state that loads on a machine without a GPU.
These helpers do those four things the same way everywhere; see
``notes/torch_utils.md`` for how an estimator uses them.
"""

import numpy as np
import torch
from sklearn.utils import check_random_state

# Use in an estimator's ``_parameter_constraints``: "auto", "cpu", "cuda:1", or
# a torch.device; the string itself is checked by resolve_device at fit time.
DEVICE_CONSTRAINT = [str, torch.device]


def resolve_device(device="auto"):
    """Return the torch device that ``device`` names.

    Parameters
    ----------
    device : str or torch.device, default="auto"
        ``"auto"`` picks ``"cuda"`` when a GPU is available, else ``"cpu"``;
        any other value is passed to :class:`torch.device`.

    Returns
    -------
    device : torch.device
        The resolved device.

    Raises
    ------
    ValueError
        If ``device`` is not a device name, or names a CUDA device on a
        machine without one.
    """
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise ValueError(f"device={device!r} is not a torch device name.") from error
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device={device!r} asks for CUDA, which is not available here; "
            "use device='cpu' or device='auto'."
        )
    return resolved


def torch_seed(random_state):
    """Draw a seed for torch from a numpy-style ``random_state``.

    An int gives the same seed every time (reproducible fits); a
    ``RandomState`` instance is advanced by one draw, as sklearn does.

    Parameters
    ----------
    random_state : int, RandomState instance or None
        As in scikit-learn (see :func:`sklearn.utils.check_random_state`).

    Returns
    -------
    seed : int
        A non-negative seed below ``2**63``.
    """
    rng = check_random_state(random_state)
    return int(rng.randint(np.iinfo(np.int64).max, dtype=np.int64))


def torch_generator(random_state, device="cpu"):
    """Return a :class:`torch.Generator` on ``device`` seeded from ``random_state``.

    Parameters
    ----------
    random_state : int, RandomState instance or None
        As in scikit-learn; see :func:`torch_seed`.
    device : str or torch.device, default="cpu"
        Device of the generator; it must match the device of the tensors it
        fills (e.g. ``torch.randn(..., generator=g, device=device)``).

    Returns
    -------
    generator : torch.Generator
        A seeded generator.
    """
    generator = torch.Generator(device=device)
    generator.manual_seed(torch_seed(random_state))
    return generator


def to_numpy_state(state_dict):
    """Copy a module's ``state_dict`` into a dict of CPU numpy arrays.

    The result pickles and loads without torch, and never refers to GPU
    memory, so an estimator fitted on a GPU loads on a CPU-only machine.

    Parameters
    ----------
    state_dict : mapping of str to torch.Tensor
        Typically ``module.state_dict()``.

    Returns
    -------
    state : dict of str to ndarray
        Independent copies, in the tensors' dtypes.
    """
    return {
        name: tensor.detach().cpu().numpy().copy()
        for name, tensor in state_dict.items()
    }


def from_numpy_state(state, device="cpu"):
    """Turn :func:`to_numpy_state`'s output back into tensors on ``device``.

    Parameters
    ----------
    state : mapping of str to ndarray
        As returned by :func:`to_numpy_state`.
    device : str or torch.device, default="cpu"
        Where the tensors go.

    Returns
    -------
    state_dict : dict of str to torch.Tensor
        Ready for ``module.load_state_dict``.
    """
    return {
        name: torch.as_tensor(array, device=device) for name, array in state.items()
    }


def to_cpu(obj):
    """Return ``obj`` with every tensor in it (nested dicts, lists, tuples) on CPU.

    Use it on an optimiser's ``state_dict()`` before storing it in a fitted
    attribute; ``optimizer.load_state_dict`` moves the tensors back to the
    parameters' device.

    Parameters
    ----------
    obj : object
        A tensor, or a container of tensors and plain values.

    Returns
    -------
    obj : object
        The same structure; tensors are detached CPU copies.
    """
    if isinstance(obj, torch.Tensor):
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, dict):
        return {key: to_cpu(value) for key, value in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(to_cpu(value) for value in obj)
    return obj
