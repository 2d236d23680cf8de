"""Shared plumbing of the experiments: presets, data, forecasts, tables, files.

Results are built as a dict of equal-length numpy columns and returned as a
pandas DataFrame when pandas is installed (``make_table``); every helper here
accepts either form, so nothing needs pandas.
"""

import os
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.utils import check_random_state

from ..datasets import make_lorenz63

# The paper's featurizer (Finn et al., 2024): ReLU blocks, Adam at a constant
# 3e-4, batch 16384, 100 epochs of 1.6e7 states, float32, uniform t. Every
# "paper" preset starts from this one dict.
PAPER_FEATURIZER = {
    "activation": "relu",
    "batch_size": 16_384,
    "learning_rate": 3e-4,
    "lr_schedule": "constant",
    "warmup_iter": 0,
    "max_iter": 100 * 16_000_000 // 16_384,
    "mixed_precision": False,
    "t_sampling": "uniform",
}

# The paper's surrogates predict 10 RK4 steps of dt = 0.01 ahead: 0.1 MTU.
DT = 0.01
LEAD_STEPS = 10


def resolve_preset(presets, preset, overrides):
    """The settings of ``preset`` with ``overrides`` (not None) applied."""
    if preset not in presets:
        raise ValueError(f"preset must be one of {sorted(presets)}, got {preset!r}.")
    settings = dict(presets[preset])
    unknown = sorted(set(overrides) - set(settings))
    if unknown:
        raise ValueError(
            f"Unknown setting(s) {unknown}; the {preset!r} preset has "
            f"{sorted(settings)}."
        )
    settings.update(
        {key: value for key, value in overrides.items() if value is not None}
    )
    return settings


def seeds_from(random_state, n):
    """``n`` integer seeds drawn from ``random_state``."""
    rng = check_random_state(random_state)
    return [int(seed) for seed in rng.randint(2**31 - 1, size=n)]


class Progress:
    """Prints timed progress lines when verbose, nothing otherwise."""

    def __init__(self, verbose, name):
        self.verbose = verbose
        self.name = name
        self.start = time.perf_counter()

    def __call__(self, message):
        if self.verbose:
            elapsed = time.perf_counter() - self.start
            print(f"[{self.name} {elapsed:6.0f} s] {message}", flush=True)


# ---------------------------------------------------------------- data


def lorenz63_data(
    n_train_trajectories,
    n_train_steps,
    n_test_trajectories,
    n_test_steps,
    *,
    lead_steps=LEAD_STEPS,
    random_state=0,
):
    """Training pairs and held-out test trajectories of Lorenz 63.

    The training and test trajectories come from different seeds (as in
    the paper). Returns ``(train, test)``, the Bunches of
    :func:`~skdiffusion.datasets.make_lorenz63`; ``test.states`` holds the
    normalised test trajectories, shape (n_trajectories, n_steps, 3).
    """
    train_seed, test_seed = seeds_from(random_state, 2)
    train = make_lorenz63(
        n_train_trajectories,
        n_train_steps,
        lead_steps=lead_steps,
        random_state=train_seed,
    )
    test = make_lorenz63(
        n_test_trajectories,
        n_test_steps,
        lead_steps=lead_steps,
        random_state=test_seed,
    )
    for data in (train, test):
        data.states = (data.trajectories - data.shift) / data.scale
    return train, test


def forecast_starts(states, n_starts, horizon):
    """Initial states and the indices of the truth, ``horizon`` steps on.

    ``n_starts`` initial states evenly spread over the test trajectories
    (shape (n_trajectories, n_steps, n_features)), each leaving ``horizon``
    steps of truth after it.
    """
    n_trajectories, n_steps, _ = states.shape
    if horizon >= n_steps:
        raise ValueError(
            f"The trajectories ({n_steps} steps) are too short for a "
            f"{horizon}-step forecast."
        )
    per_trajectory = -(-n_starts // n_trajectories)
    starts = np.linspace(0, n_steps - 1 - horizon, per_trajectory).astype(int)
    rows = np.repeat(np.arange(n_trajectories), per_trajectory)[:n_starts]
    cols = np.tile(starts, n_trajectories)[:n_starts]
    return rows, cols


def forecast_skill(forecaster, test, *, n_starts, n_leads, n_climate, climate_leads):
    """nRMSE per lead time, climate Hellinger distance and blown-up fraction.

    Rolls ``forecaster`` (a fitted
    :class:`~skdiffusion.surrogate.SurrogateForecaster`) out for ``n_leads``
    steps from ``n_starts`` test states, then continues ``n_climate`` of
    them (evenly picked) for ``climate_leads`` more steps; those later
    states are its climate, compared with all test states.

    Returns ``(nrmse_curve, hellinger, blown_up)``: ``nrmse_curve`` has
    ``n_leads + 1`` values (lead 0 is 0), NaN from the first lead where a
    trajectory blew up; ``blown_up`` is the fraction of trajectories that
    blew up in either rollout.
    """
    from ..metrics import hellinger_distance, nrmse

    if n_climate > n_starts:
        raise ValueError(
            f"n_climate={n_climate} rollouts are continued from the n_starts="
            f"{n_starts} forecasts; it must not exceed n_starts."
        )
    lead = test.lead_steps
    rows, cols = forecast_starts(test.states, n_starts, n_leads * lead)
    truth = np.stack(
        [test.states[rows, cols + k * lead] for k in range(n_leads + 1)], axis=1
    )
    forecast = _quiet_forecast(forecaster, truth[:, 0], n_leads)
    curve = nrmse(truth, forecast, std=1.0)

    climate = np.full((n_climate, climate_leads, truth.shape[2]), np.nan)
    # continue rollouts spread over all test trajectories
    continued = np.linspace(0, n_starts - 1, n_climate).astype(int)
    last = forecast[continued, -1]
    alive = np.all(np.isfinite(last), axis=1)
    if alive.any():
        climate[alive] = _quiet_forecast(forecaster, last[alive], climate_leads)[:, 1:]
    hellinger = hellinger_distance(
        climate.reshape(-1, truth.shape[2]), test.states.reshape(-1, truth.shape[2])
    )
    blown_up = ~np.all(np.isfinite(forecast), axis=(1, 2))
    blown_up[continued] |= ~np.all(np.isfinite(climate), axis=(1, 2))
    return curve, hellinger, float(blown_up.mean())


def climate_floor(test, *, n_climate, climate_leads, random_state=0):
    """Hellinger distance of true states sampled like a forecast climate.

    ``n_climate`` fresh true trajectories of ``climate_leads`` steps of
    ``test.lead_steps``, against all test states: the distance that a
    perfect surrogate would get from sampling alone.
    """
    from ..metrics import hellinger_distance

    lead = test.lead_steps
    truth = make_lorenz63(
        n_climate, climate_leads * lead, lead_steps=lead, random_state=random_state
    )
    sample = (truth.trajectories[:, lead - 1 :: lead] - truth.shift) / truth.scale
    n_features = sample.shape[-1]
    return hellinger_distance(
        sample.reshape(-1, n_features), test.states.reshape(-1, n_features)
    )


def _quiet_forecast(forecaster, X0, n_steps):
    # A blown-up trajectory is reported in the table; the warning is noise here.
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return forecaster.forecast(X0, n_steps)


# ---------------------------------------------------------------- tables


def make_table(columns):
    """A pandas DataFrame of ``columns`` if pandas is installed, else the dict.

    ``columns`` maps names to equal-length sequences; the dict form holds
    numpy arrays.
    """
    columns = {name: np.asarray(values) for name, values in columns.items()}
    lengths = {len(values) for values in columns.values()}
    if len(lengths) > 1:
        raise ValueError(f"Columns have different lengths: {sorted(lengths)}.")
    try:
        import pandas as pd
    except ImportError:
        return columns
    return pd.DataFrame(columns)


def table_columns(table):
    """The columns of a table (DataFrame or dict) as a dict of numpy arrays."""
    if hasattr(table, "to_dict") and hasattr(table, "columns"):
        return {name: table[name].to_numpy() for name in table.columns}
    return {name: np.asarray(values) for name, values in table.items()}


def records_to_columns(records):
    """A list of dicts with the same keys -> dict of columns."""
    if not records:
        return {}
    return {key: [record[key] for record in records] for key in records[0]}


def write_csv(table, path):
    """Write a table (DataFrame or dict of columns) to ``path`` as CSV."""
    columns = table_columns(table)
    names = list(columns)
    with open(path, "w", encoding="utf-8") as file:
        file.write(",".join(names) + "\n")
        for row in zip(*(columns[name] for name in names), strict=True):
            file.write(",".join(_csv_cell(value) for value in row) + "\n")


def _csv_cell(value):
    if isinstance(value, float | np.floating):
        return repr(float(value))
    text = str(value)
    return f'"{text}"' if "," in text or '"' in text else text


def format_table(columns, *, float_format="{:.3g}"):
    """Plain-text rendering of a dict of columns, one row per line."""
    cells = {
        name: [
            float_format.format(v) if isinstance(v, float | np.floating) else str(v)
            for v in values
        ]
        for name, values in columns.items()
    }
    widths = {
        name: max([len(name)] + [len(c) for c in col]) for name, col in cells.items()
    }
    lines = ["  ".join(name.ljust(widths[name]) for name in cells)]
    n_rows = len(next(iter(cells.values()), []))
    for i in range(n_rows):
        lines.append("  ".join(cells[name][i].ljust(widths[name]) for name in cells))
    return "\n".join(lines)


def output_path(output_dir, name):
    """``output_dir / name``, creating the directory; None if no directory."""
    if output_dir is None:
        return None
    directory = Path(output_dir)
    directory.mkdir(parents=True, exist_ok=True)
    return directory / name


def save_outputs(output_dir, stem, table, plot=None, progress=None):
    """Write ``stem.csv`` and, given ``plot`` (table -> figure), ``stem.png``."""
    csv_path = output_path(output_dir, f"{stem}.csv")
    if csv_path is None:
        return
    write_csv(table, csv_path)
    if progress is not None:
        progress(f"wrote {csv_path}")
    if plot is None:
        return
    if not _have_matplotlib():
        if progress is not None:
            progress("matplotlib is not installed: no PNG written")
        return
    import matplotlib

    if "matplotlib.pyplot" not in sys.modules and not os.environ.get("MPLBACKEND"):
        matplotlib.use("Agg")  # writing files needs no display
    import matplotlib.pyplot as plt

    figure = plot(table)
    png_path = output_path(output_dir, f"{stem}.png")
    figure.savefig(png_path, dpi=120, bbox_inches="tight")
    plt.close(figure)
    if progress is not None:
        progress(f"wrote {png_path}")


def _have_matplotlib():
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def percentile_summary(values):
    """Median, 5th and 95th percentile over seeds (NaN if any value is NaN)."""
    values = np.asarray(values, dtype=float)
    if np.isnan(values).any():
        return np.nan, np.nan, np.nan
    return tuple(float(q) for q in np.percentile(values, [50, 5, 95]))
