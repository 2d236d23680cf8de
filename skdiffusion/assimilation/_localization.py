"""Localisation on a periodic ring of sites: distances and the Gaspari-Cohn taper.

Distances are counted in sites. A radius is the standard deviation of the
Gaussian that the Gaspari-Cohn function matches near zero (the convention of
Sakov & Bertino, 2011, which DAPPER's Lorenz 96 benchmarks use): the taper is
0.635 at one radius and reaches zero at ``2 sqrt(10/3)`` radii, about 3.65.
"""

from numbers import Integral, Real

import numpy as np
from sklearn.utils._param_validation import Interval, validate_params

# Half-width of the Gaspari-Cohn function per unit radius: with it the taper
# has the curvature at 0 of a Gaussian whose standard deviation is the radius.
GC_HALF_WIDTH = np.sqrt(10.0 / 3.0)


@validate_params(
    {"distance": ["array-like", Real],
     "radius": [Interval(Real, 0, None, closed="neither")]},
    prefer_skip_nested_validation=True,
)
def gaspari_cohn(distance, radius):
    """The Gaspari-Cohn fifth-order taper, 1 at distance 0 and 0 beyond 3.65 radii.

    Parameters
    ----------
    distance : array-like
        Non-negative distances (in sites on a ring).
    radius : float
        Localisation radius: the taper is 0.635 at this distance (a Gaussian
        of this standard deviation has 0.607) and 0 beyond 3.65 radii.

    Returns
    -------
    taper : ndarray of the shape of ``distance``
        Values in [0, 1].

    Notes
    -----
    Gaspari & Cohn (1999), "Construction of correlation functions in two and
    three dimensions", QJRMS 125, eq. (4.10), with half-width
    ``c = sqrt(10/3) radius``; the function is compactly supported on
    ``[0, 2c]``, so a Schur product with it keeps a covariance positive
    semi-definite.

    Examples
    --------
    >>> from skdiffusion.assimilation import gaspari_cohn
    >>> gaspari_cohn([0.0, 4.0, 30.0], radius=4).round(3)
    array([1.   , 0.635, 0.   ])
    """
    r = np.abs(np.asarray(distance, dtype=np.float64)) / (GC_HALF_WIDTH * radius)
    inner = 1 - 5 / 3 * r**2 + 5 / 8 * r**3 + r**4 / 2 - r**5 / 4
    with np.errstate(divide="ignore"):
        outer = (4 - 5 * r + 5 / 3 * r**2 + 5 / 8 * r**3 - r**4 / 2 + r**5 / 12
                 - 2 / (3 * r))
    taper = np.where(r <= 1, inner, np.where(r < 2, outer, 0.0))
    return np.clip(taper, 0.0, 1.0)


@validate_params(
    {
        "n_sites": [Interval(Integral, 1, None, closed="left")],
        "sites": [None, "array-like"],
    },
    prefer_skip_nested_validation=True,
)
def ring_distances(n_sites, sites=None):
    """Distances in sites between points of a periodic ring (Lorenz 96's grid).

    Parameters
    ----------
    n_sites : int
        Number of sites on the ring.
    sites : array-like of shape (n_points,), default=None
        Positions of other points (e.g. observations), in sites; ``None``
        uses every site.

    Returns
    -------
    distances : ndarray of shape (n_sites, n_points)
        ``min(|i - s|, n_sites - |i - s|)`` for site ``i`` and point ``s``.

    Examples
    --------
    >>> from skdiffusion.assimilation import ring_distances
    >>> ring_distances(5)[0]
    array([0., 1., 2., 2., 1.])
    """
    sites = np.arange(n_sites) if sites is None else np.asarray(sites, np.float64)
    gap = np.abs(np.arange(n_sites)[:, None] - sites[None, :]) % n_sites
    return np.minimum(gap, n_sites - gap).astype(np.float64)


def observation_sites(H):
    """The site of each observation: the variable its row of ``H`` weighs most."""
    return np.argmax(np.abs(H), axis=1)


def covariance_taper(n_sites, radius):
    """Gaspari-Cohn taper between every pair of sites; ``None`` radius is no taper."""
    if radius is None:
        return None
    return gaspari_cohn(ring_distances(n_sites), radius)
