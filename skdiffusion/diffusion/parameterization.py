"""What the denoiser predicts, and how to turn a prediction into x or eps.

With ``z = sqrt(alpha_bar) x + sigma eps`` the network predicts one of

* ``"velocity"``: ``v = sqrt(alpha_bar) eps - sigma x`` (Salimans & Ho, 2022),
* ``"noise"``: ``eps`` (Ho et al., 2020),
* ``"state"``: ``x`` itself.

`alpha_bar` may be a float or a tensor broadcastable against the states,
e.g. of shape (batch, 1). The conversions need ``0 < alpha_bar < 1``
(steps 1..T); at alpha_bar = 1 the noise is undefined.
"""

import math

import torch

__all__ = [
    "PARAMETERIZATIONS",
    "check_parameterization",
    "loss_target",
    "noised",
    "to_noise",
    "to_state",
]

PARAMETERIZATIONS = ("velocity", "noise", "state")


def check_parameterization(name):
    """Raise a ValueError naming `name` unless it is a known parameterisation."""
    if name not in PARAMETERIZATIONS:
        raise ValueError(
            f"Unknown parameterization {name!r}; expected one of "
            f"{list(PARAMETERIZATIONS)}."
        )


def noised(x, alpha_bar, eps):
    """The noised state ``z = sqrt(alpha_bar) x + sigma eps``.

    ``sigma = sqrt(1 - alpha_bar)``; the one place this formula is written.
    """
    signal, sigma = _levels(alpha_bar)
    return signal * x + sigma * eps


def _levels(alpha_bar):
    if isinstance(alpha_bar, torch.Tensor):
        return torch.sqrt(alpha_bar), torch.sqrt(1.0 - alpha_bar)
    return math.sqrt(alpha_bar), math.sqrt(1.0 - alpha_bar)


def loss_target(name, x, eps, alpha_bar):
    """The regression target of the network for clean states x and noise eps."""
    check_parameterization(name)
    if name == "noise":
        return eps
    if name == "state":
        return x
    sqrt_ab, sigma = _levels(alpha_bar)
    return sqrt_ab * eps - sigma * x


def to_state(name, prediction, z, alpha_bar):
    """The denoised state x_hat implied by a prediction at noised state z."""
    check_parameterization(name)
    if name == "state":
        return prediction
    sqrt_ab, sigma = _levels(alpha_bar)
    if name == "noise":
        return (z - sigma * prediction) / sqrt_ab
    return sqrt_ab * z - sigma * prediction


def to_noise(name, prediction, z, alpha_bar):
    """The noise eps_hat implied by a prediction at noised state z."""
    check_parameterization(name)
    if name == "noise":
        return prediction
    sqrt_ab, sigma = _levels(alpha_bar)
    if name == "state":
        return (z - sqrt_ab * prediction) / sigma
    return sigma * z + sqrt_ab * prediction
