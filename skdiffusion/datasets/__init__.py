"""Dynamical systems, an RK4 integrator and dataset generators.

The Lorenz 1963 and Lorenz 1996 systems as vector fields, a fixed-step RK4
integrator vectorised over trajectories, ``make_*`` functions returning
surrogate-learning datasets as :class:`~sklearn.utils.Bunch` objects (for
the two systems, or for any vector field with :func:`make_trajectories`), and
:func:`pairs_from_trajectories` and :func:`normalize_states` to make the same
learning problem from one's own trajectories.
"""

from ._base import get_data_home
from ._generators import make_lorenz63, make_lorenz96, make_trajectories
from ._integrate import rk4
from ._preprocessing import normalize_states, pairs_from_trajectories
from ._systems import LORENZ63_SCALE, LORENZ63_SHIFT, lorenz63, lorenz96

__all__ = [
    "LORENZ63_SCALE",
    "LORENZ63_SHIFT",
    "get_data_home",
    "lorenz63",
    "lorenz96",
    "make_lorenz63",
    "make_lorenz96",
    "make_trajectories",
    "normalize_states",
    "pairs_from_trajectories",
    "rk4",
]
