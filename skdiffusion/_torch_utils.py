"""Torch plumbing shared by the estimators: device, seeds, data, CPU-only state.

The estimators keep torch inside: they take and return numpy arrays, choose
their device with ``device="auto"``, draw every random number from
``random_state``, standardise their data the same way, train with
:func:`skdiffusion.engine.train`, and pickle to a state that loads on a
machine without a GPU. These helpers do those things the same way
everywhere: an estimator's ``fit`` resolves the device, draws its initial
weights with :func:`seeded_module`, standardises with :func:`mean_and_scale`
and :func:`standardized_tensor`, trains with a generator from
:func:`training_generator`, and reports the end of training with
:func:`warn_training_end`.
"""

import io
import warnings

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import StandardScaler
from sklearn.utils import check_random_state

from .engine import TrainingHistory

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
    if resolved.type not in ("cpu", "cuda"):
        raise ValueError(
            f"device={device!r} is not supported; use 'cpu', 'cuda', 'cuda:N' or "
            "'auto'."
        )
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


class _TorchBytes:
    """Pickles a torch object as :func:`torch.save`'s bytes; unpickles to it.

    Python's pickle of a tensor names its storage by memory address, so two
    pickles of one model differ; ``torch.save``'s archive numbers the
    storages in order and is the same bytes for the same model. Loads on
    the CPU, so a model fitted on a GPU loads anywhere.
    """

    def __init__(self, value):
        self.value = value

    def __reduce__(self):
        buffer = io.BytesIO()
        torch.save(self.value, buffer)
        return (_torch_load, (buffer.getvalue(),))


def _torch_load(data):
    # the estimator's own objects (modules): pickle already trusted them
    return torch.load(io.BytesIO(data), map_location="cpu", weights_only=False)


def _holds_tensors(value):
    if isinstance(value, torch.Tensor | torch.nn.Module):
        return True
    if isinstance(value, dict):
        return any(_holds_tensors(item) for item in value.values())
    if isinstance(value, list | tuple):
        return any(_holds_tensors(item) for item in value)
    return False


def reproducible_state(state):
    """An estimator's ``__getstate__`` dict whose pickle is the same bytes each time.

    Every value holding torch tensors or modules is pickled through
    :func:`torch.save` (:class:`_TorchBytes`) and comes back as itself.
    """
    return {
        name: _TorchBytes(value) if _holds_tensors(value) else value
        for name, value in state.items()
    }


def continued_history(estimator, warm):
    """The engine's history to start a fit from: empty, or the fitted curves.

    With `warm`, the new call appends to ``loss_curve_`` and
    ``validation_scores_`` and counts its steps on from ``n_iter_``.
    """
    if not warm:
        return TrainingHistory()
    return TrainingHistory(
        loss_curve=list(estimator.loss_curve_),
        validation_scores=list(estimator.validation_scores_ or []),
        n_iter=estimator.n_iter_,
    )


# Standardised values beyond this are almost surely a units mistake (data
# 1e6 standard deviations from the training mean), and float32 networks
# overflow on them into NaN: refused rather than returned as NaN.
MAX_STANDARDIZED = 1e6


def mean_and_scale(A, name="X"):
    """Column means and standard deviations of `A` (1 where a column is constant).

    :class:`~sklearn.preprocessing.StandardScaler`'s statistics, in float64.
    Raises a ValueError naming `name` when they overflow.
    """
    scaler = StandardScaler().fit(A)
    # var_, not only scale_: StandardScaler takes an overflowing variance for
    # a constant column and sets its scale to 1
    statistics = (scaler.mean_, scaler.var_, scaler.scale_)
    if not all(np.isfinite(values).all() for values in statistics):
        raise ValueError(
            f"{name} is too large to standardise: its mean or standard deviation "
            "overflows float64."
        )
    return scaler.mean_, scaler.scale_


def standardized_tensor(A, mean, scale, device, name="X"):
    """Return float32 ``(A - mean) / scale`` on ``device`` as a new tensor.

    Raises a ValueError naming `name` when a value lies more than
    `MAX_STANDARDIZED` standard deviations from the mean.
    """
    if A.dtype == np.float64:
        # Subtract in float64 first: offsets must not eat float32 precision.
        standardized = (A - mean) / scale
        _check_magnitude(standardized, name)
        return torch.from_numpy(standardized.astype(np.float32)).to(device)
    tensor = torch.tensor(A, dtype=torch.float32, device=device)
    tensor -= torch.as_tensor(mean, dtype=torch.float32, device=device)
    tensor /= torch.as_tensor(scale, dtype=torch.float32, device=device)
    _check_magnitude(tensor, name)
    return tensor


def _check_magnitude(values, name):
    largest = float(abs(values).max()) if values.shape[0] else 0.0
    if not largest <= MAX_STANDARDIZED:
        raise ValueError(
            f"{name} has a value {largest:.3g} standard deviations from the "
            f"training mean (more than {MAX_STANDARDIZED:g}): most likely other "
            "units than the training data."
        )


def seeded_module(build, random_state):
    """``build()`` with its initial weights drawn from `random_state`.

    torch's global generator is left as it was.
    """
    seed = torch_seed(random_state)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


def training_generator(random_state, device, n_iter):
    """The generator of a fit's randomness, on the training `device`.

    Offset by the steps already taken, so that a warm-started fit with the
    same int ``random_state`` draws new batches and noise, not the first
    call's again.
    """
    generator = torch.Generator(device=device)
    generator.manual_seed((torch_seed(random_state) + n_iter) % 2**63)
    return generator


def split_rows(n_rows, fraction, rng):
    """Random training and validation row indices; validation gets `fraction`.

    Raises a ValueError when either part would be empty.
    """
    n_val = round(fraction * n_rows)
    if not 0 < n_val < n_rows:
        raise ValueError(
            f"validation_fraction={fraction} leaves no training or no "
            f"validation row out of {n_rows}."
        )
    order = rng.permutation(n_rows)
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def warn_training_end(estimator, history):
    """The warnings at the end of a fit: interrupted, or not converged.

    "Not converged" is only said when a stopping rule was set
    (``n_iter_no_change``) and training ran all ``max_iter`` steps.
    """
    name = type(estimator).__name__
    if history.interrupted:
        warnings.warn(
            f"{name}: training was interrupted after {history.n_iter} steps in "
            "all; the weights reached are kept. Call fit again with "
            "warm_start=True to continue.",
            UserWarning,
            stacklevel=5,  # the caller of fit, past the two fit decorators
        )
    elif (
        estimator.n_iter_no_change is not None
        and not history.stopped_early
        and estimator.max_iter > 0
    ):
        warnings.warn(
            f"{name}: maximum iterations ({estimator.max_iter} steps) reached "
            "and the optimization hasn't converged yet.",
            ConvergenceWarning,
            stacklevel=5,
        )
