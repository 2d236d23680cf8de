"""Where datasets are cached on disk."""

import os

from .._validation import validate_params


@validate_params(
    {"data_home": [str, os.PathLike, None]}, prefer_skip_nested_validation=True
)
def get_data_home(data_home=None):
    """Return the folder where skdiffusion caches generated datasets.

    Large datasets (such as the paper's 16 x 10^6 Lorenz 63 states) are made
    once and then read back from this folder.

    Parameters
    ----------
    data_home : str or path-like, default=None
        The folder. If None, the ``SKDIFFUSION_DATA`` environment variable,
        else ``~/skdiffusion_data``. A leading ``~`` is expanded and the
        folder is created if missing.

    Returns
    -------
    data_home : str
        The folder's path.

    Raises
    ------
    ValueError
        If ``data_home`` names a file, or a path through a file.

    See Also
    --------
    sklearn.datasets.get_data_home : The same for scikit-learn's datasets.

    Examples
    --------
    >>> import tempfile
    >>> from skdiffusion.datasets import get_data_home
    >>> folder = get_data_home(tempfile.mkdtemp())
    """
    if data_home is None:
        data_home = os.environ.get("SKDIFFUSION_DATA", "~/skdiffusion_data")
    data_home = os.path.expanduser(os.fspath(data_home))
    try:
        os.makedirs(data_home, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as error:
        raise ValueError(
            f"data_home={data_home!r} is not a folder (it, or a folder above "
            "it, is a file); pass a folder for the dataset cache."
        ) from error
    return data_home
