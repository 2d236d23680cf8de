"""What the experiments share: presets, seeds, Lorenz 63 data, one fit, files."""

import time
import warnings
from dataclasses import field
from pathlib import Path

from sklearn.exceptions import ConvergenceWarning
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


def params(**kwargs):
    """A preset's field of estimator parameters (a fresh dict per preset)."""
    return field(default_factory=lambda: dict(kwargs))


def preset_of(preset, presets):
    """``presets[preset]`` for a preset's name, ``preset`` itself otherwise."""
    if isinstance(preset, str):
        check_names("preset", [preset], presets)
        return presets[preset]
    return preset


def check_names(kind, names, known):
    """Raise a ValueError naming those of ``names`` not in ``known``."""
    unknown = sorted(set(names) - set(known))
    if unknown:
        raise ValueError(f"Unknown {kind} {unknown}; choose from {list(known)}.")


def seeds_from(random_state, n):
    """``n`` integer seeds drawn from ``random_state``."""
    rng = check_random_state(random_state)
    return [int(seed) for seed in rng.randint(2**31 - 1, size=n)]


def lorenz63_data(preset, *, random_state):
    """Lorenz 63 training and test Bunches (make_lorenz63), normalised ``states``."""
    train_seed, test_seed = seeds_from(random_state, 2)
    n_train, n_test = preset.n_train_trajectories, preset.n_test_trajectories
    train = make_lorenz63(n_train, preset.n_train_steps, random_state=train_seed)
    test = make_lorenz63(n_test, preset.n_test_steps, random_state=test_seed)
    for data in (train, test):
        data.states = (data.trajectories - data.shift) / data.scale
    return train, test


def fit_and_score(model, X, y, score, *args, fit_params=None):
    """Fit ``model`` on ``(X, y)``; ``{**score(model, *args), "fit_time": s}``."""
    start = time.perf_counter()
    with warnings.catch_warnings():
        # fixed budgets: stopping before convergence is intended
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X, y, **(fit_params or {}))
    fit_time = time.perf_counter() - start
    return {**score(model, *args), "fit_time": fit_time}


def save(table, output_dir, stem):
    """Write ``table`` to ``output_dir/stem.csv``; nothing without ``output_dir``."""
    if output_dir is not None:
        Path(output_dir).mkdir(parents=True, exist_ok=True)
        table.to_csv(Path(output_dir) / f"{stem}.csv", index=False)
