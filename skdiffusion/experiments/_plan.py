"""What a preset of the surrogate comparison will cost, before it runs.

:func:`surrogate_plan` lists the stages of
:func:`~skdiffusion.experiments.surrogate_comparison` for a preset: rows and
columns of the data each stage reads, its peak host memory, and its time on
this machine's CPU (from a probe of a few seconds: every network, feature
map and ridge update timed on small batches, scaled by rows and steps) and
on one GPU (floating-point operations divided by an assumed sustained
throughput: a lower bound; ``benchmarks/gpu_check.py`` measures a real one).
Memory counts the arrays the stage allocates (float64 where the code keeps
float64) and, in :func:`~skdiffusion.experiments._plan_others.experiment_plan`,
the process itself (Python, torch, the probe: measured after the probe).
"""

import os
import sys
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..datasets import make_lorenz63
from .surrogate import MODELS

# float32 operations per second assumed for one GPU: an A100's float32 peak
# (19.5 TFLOP/s). Small networks reach a fraction of a peak, so the GPU
# column is optimistic; benchmarks/gpu_check.py measures the real rate.
GPU_FLOPS = 19.5e12
_F64, _F32 = 8, 4


@dataclass
class _Probe:
    """Seconds per row (or per row and step) of each kind of work, measured here."""

    integrate: float  # one RK4 step of up to 16 trajectories at once
    denoiser_step: float  # one training row of the featurizer
    network_step: dict  # one training row of each from-scratch network
    head_step: float  # one training row of the shallow head
    rff: float  # one row of 1536 random features
    poly: float  # one row of degree-4 polynomial features
    diffusion: float  # one row of the six-time diffusion features
    accumulate: float  # one row of 1536 features into X^T X
    process_gb: float = 0.0  # resident memory of this process after the probe


def _resident_gb():
    """This process's resident memory (Linux), or its peak elsewhere."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e9
    except OSError:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak * (1 if sys.platform == "darwin" else 1024) / 1e9


def _seconds(call, repeat=2):
    call()  # warm-up
    start = time.perf_counter()
    for _ in range(repeat):
        call()
    return (time.perf_counter() - start) / repeat


def probe(preset, rows=1024):
    """Time each kind of work on `rows` rows here: a few seconds in all."""
    from sklearn.preprocessing import PolynomialFeatures

    from ..featurizers import DiffusionFeaturizer, RFFFeaturizer
    from ..neural import DenseRegressor, ResidualRegressor

    width = getattr(preset, "width", 256)  # the paper's networks
    rng = np.random.default_rng(0)
    X = rng.normal(size=(rows, 3))
    y = rng.normal(size=(rows, 3))
    # RK4 is vectorised over trajectories: the time goes with the steps
    integrate = (
        _seconds(lambda: make_lorenz63(16, 5_000, burn_in=0, cache=False), repeat=1)
        / 5_000
    )
    steps = 3

    def fit_time(estimator, *data):
        return _seconds(lambda: estimator.fit(*data), repeat=1) / (steps * rows)

    featurizer_params = {**preset.featurizer, "max_iter": steps, "batch_size": rows}
    featurizer = DiffusionFeaturizer(random_state=0, device="cpu", **featurizer_params)
    denoiser_step = fit_time(featurizer, X)
    train = {
        "max_iter": steps,
        "batch_size": rows,
        "device": "cpu",
        "n_iter_no_change": None,
    }
    networks = {
        f"dense({n}x{width})": DenseRegressor((width,) * n, **train)
        for n in (1, 2, 3)
    }
    networks["residual(3 blocks)"] = ResidualRegressor(width, **train)
    network_step = {name: fit_time(net, X, y) for name, net in networks.items()}
    head = DenseRegressor((width,), **train)
    head_step = fit_time(head, rng.normal(size=(rows, 2 * 256)), y)
    rff = RFFFeaturizer(1536, random_state=0).fit(X)
    poly = PolynomialFeatures(4, include_bias=False).fit(X)
    features = rng.normal(size=(rows, 1536))
    return _Probe(
        integrate=integrate,
        denoiser_step=denoiser_step,
        network_step=network_step,
        head_step=head_step,
        rff=_seconds(lambda: rff.transform(X)) / rows,
        poly=_seconds(lambda: poly.transform(X)) / rows,
        diffusion=_seconds(lambda: featurizer.transform(X)) / rows,
        accumulate=_seconds(lambda: features.T @ features) / rows,
        process_gb=_resident_gb(),
    )


def _denoiser_flops(width=256, n_blocks=3, embedding=512, n_features=3):
    """Training operations per row: about 6 per weight (forward 2, backward 4)."""
    weights = (
        n_features * width
        + n_blocks * (2 * width * width + embedding * 2 * width)
        + width * n_features
    )
    return 6 * weights


def _transform_flops(width=256, n_blocks=3, n_times=6, n_features=3):
    """Feature operations per row: FiLM is constant per time, so 2 per weight."""
    return 2 * n_times * (n_features * width + n_blocks * 2 * width * width)


def _n_features(name):
    """Columns of a ridge model's features, from its label in MODELS."""
    for key, n_features in (
        ("RFF(1536)", 1536),
        ("RFF(256)", 256),
        ("poly(4)", 34),
        ("(6 t)", 1536),
        ("(t=400)", 256),
    ):
        if key in name:
            return n_features
    raise ValueError(f"No feature count known for the model {name!r}.")


def _shallow_stage(p, kind, n_train, timing):
    """A shallow head on the features at t = 0 and 400 (512 columns)."""
    samples = p.n_seeds * p.head["max_iter"] * p.head["batch_size"]
    head_flops = 6 * (512 + 3) * p.width
    if p.stream_heads:  # every step recomputes its batch's features
        how, memory = "streamed", 3 * n_train * 3 * _F32
        cpu = samples * (timing.head_step + timing.diffusion / 3)
        flops = samples * (head_flops + _transform_flops(n_times=2))
    else:  # Pipeline.fit holds the features (float64), the head a float32 copy
        how, memory = "features materialised", n_train * 512 * (_F64 + _F32)
        cpu = samples * timing.head_step + p.n_seeds * n_train * timing.diffusion / 3
        flops = samples * head_flops + p.n_seeds * n_train * _transform_flops(n_times=2)
    return {
        "stage": f"shallow head: {kind}(t=0,400) ({how})",
        "runs": p.n_seeds,
        "rows": n_train,
        "columns": 512,
        "memory_gb": memory / 1e9,
        "cpu_s": cpu,
        "gpu_s": flops / GPU_FLOPS,
    }


def _stage(stage, runs, rows, columns, memory, cpu_s, gpu_s):
    return {
        "stage": stage, "runs": runs, "rows": rows, "columns": columns,
        "memory_gb": memory / 1e9, "cpu_s": cpu_s, "gpu_s": gpu_s,
    }


def _featurizer_stage(p, runs, rows, data, timing, label="featurizer training"):
    steps = p.featurizer.get("max_iter", 0)
    batch = p.featurizer.get("batch_size", 16_384)
    # a float32 standardised copy and the split's train/validation copies
    return _stage(
        label, runs, rows, 3, data + 3 * rows * 3 * _F32,
        runs * steps * batch * timing.denoiser_step,
        runs * steps * batch * _denoiser_flops() / GPU_FLOPS,
    )


def _feature_costs(name, timing):
    """Seconds and operations per row, and columns, of a model's features."""
    n_features = _n_features(name)
    if "(6 t)" in name or "(t=" in name:  # diffusion features, 256 per time
        n_times = n_features // 256
        flops = _transform_flops(n_times=n_times)
        return timing.diffusion * n_times / 6, flops, n_features
    per_row = {1536: timing.rff, 256: timing.rff / 6, 34: timing.poly}[n_features]
    return per_row, 2 * 3 * n_features, n_features


def _network_weights(name, width):
    """Weights of a from-scratch network, from its label in MODELS."""
    size = int(name.split("(")[1][0])  # dense(2x256): 2 layers; residual(3 blocks)
    if name.startswith("residual"):
        return 6 * width + 2 * size * width * width
    return 6 * width + (size - 1) * width * width


def surrogate_plan(preset, timing=None):
    """The stages of a surrogate-comparison preset, with their sizes and costs.

    Parameters
    ----------
    preset : SurrogatePreset
    timing : _Probe, default=None
        Measured by :func:`probe` when None.

    Returns
    -------
    plan : pandas.DataFrame
        One row per stage: ``stage``, ``runs`` (per seed, or 1), ``rows``,
        ``columns``, ``memory_gb`` (peak of the stage's arrays, host),
        ``cpu_s`` and ``gpu_s`` (all runs of the stage over all seeds).
    """
    p = preset
    timing = probe(p) if timing is None else timing
    lead, burn_in = 10, 5_000
    n_train = p.n_train_trajectories * (p.n_train_steps - lead)
    n_test = p.n_test_trajectories * (p.n_test_steps - lead)
    seeds = p.n_seeds
    steps_total = p.n_train_steps + p.n_test_steps + 2 * burn_in
    # trajectories, X, y, normalised states of train, and X + y for the fits
    data_gb = 5 * n_train * 3 * _F64 / 1e9
    # every fit builds the next states (X + y) and the forecaster the increment
    fit_gb = 2 * n_train * 3 * _F64 / 1e9
    # the climate floor integrates n_climate trajectories (states, X, y)
    climate_gb = 3 * p.n_climate * p.climate_leads * lead * 3 * _F64 / 1e9
    net_steps, net_batch = p.network["max_iter"], p.network["batch_size"]
    predictions = p.n_starts * p.n_leads + p.n_climate * p.climate_leads
    stages = [
        _stage(
            "data: Lorenz 63 train + test (RK4)", 1, n_train + n_test, 3,
            (data_gb + climate_gb) * 1e9, steps_total * timing.integrate, np.nan,
        ),
        _featurizer_stage(
            p, seeds, n_train, 0.0, timing, "featurizer training (one per seed)"
        ),
    ]
    for name, seconds in timing.network_step.items():
        weights = _network_weights(name, p.width)
        stages.append(_stage(
            f"from scratch: {name}", seeds, n_train, 3, 4 * n_train * 3 * _F32,
            seeds * net_steps * net_batch * seconds,
            seeds * net_steps * net_batch * 6 * weights / GPU_FLOPS,
        ))
    ridges = [name for name in MODELS if "+ridge" in name]
    for name in ridges:
        per_row, feature_flops, n_features = _feature_costs(name, timing)
        flops = 2 * n_features * n_features
        if name.startswith(("transfer", "untrained")):  # as planned on GPUs
            flops += feature_flops
        # one pass accumulates the normal equations (per part, held out or
        # not); a held-out penalty re-reads its quarter of the rows; the
        # rollouts predict; each chunk's features live in float64
        held_out = name.endswith("CV")
        rows_read = n_train * (1.25 if held_out else 1.0) + predictions
        n_systems = 4 if held_out else 3
        accumulate = timing.accumulate * (n_features / 1536) ** 2
        stages.append(
            {
                "stage": f"ridge head: {name} (streamed)",
                "runs": seeds,
                "rows": n_train,
                "columns": n_features,
                "memory_gb": (3 * p.chunk_size * n_features + n_systems * n_features**2)
                * _F64
                / 1e9,
                "cpu_s": seeds * (rows_read * per_row + n_train * accumulate),
                "gpu_s": seeds * rows_read * flops / GPU_FLOPS,
            }
        )
    for kind in ("transfer", "untrained"):
        stages.append(_shallow_stage(p, kind, n_train, timing))
    plan = pd.DataFrame(stages)
    fits = ~plan["stage"].str.startswith(("data", "featurizer"))
    plan["memory_gb"] += np.where(plan["stage"].str.startswith("data"), 0.0, data_gb)
    plan["memory_gb"] += np.where(fits, fit_gb, 0.0)
    return plan


def _duration(seconds):
    """Seconds in the largest unit that makes them readable."""
    for unit, size in (("days", 86_400), ("hours", 3_600), ("minutes", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.0f} s"


def format_plan(plan, limit_gb=16.0):
    """The plan as text, with totals and the stages over `limit_gb`."""
    shown = plan.assign(
        data=[
            f"{r:,} x {c}" for r, c in zip(plan["rows"], plan["columns"], strict=True)
        ],
        memory=[f"{m:.2f}" for m in plan["memory_gb"]],
        cpu=[f"{s:,.0f}" for s in plan["cpu_s"]],
        gpu=["-" if np.isnan(s) else f"{s:,.0f}" for s in plan["gpu_s"]],
    )[["stage", "runs", "data", "memory", "cpu", "gpu"]]
    shown.columns = ["stage", "runs", "rows x columns", "peak GB", "CPU s", "GPU s"]
    over = plan[plan["memory_gb"] > limit_gb]
    cpu_only = plan.loc[plan["gpu_s"].isna(), "cpu_s"].sum()
    lines = [
        shown.to_string(index=False),
        f"\nTotal: {plan['cpu_s'].sum():,.0f} s on this CPU "
        f"({_duration(plan['cpu_s'].sum())}), "
        f"{np.nansum(plan['gpu_s']):,.0f} s on one GPU at "
        f"{GPU_FLOPS / 1e12:g} TFLOP/s (a lower bound) and {cpu_only:,.0f} s of "
        f"stages without a network; peak host memory "
        f"{plan['memory_gb'].max():.1f} GB.",
    ]
    if len(over):
        lines.append(f"Over {limit_gb:g} GB: {', '.join(over['stage'])}.")
    else:
        lines.append(f"Every stage fits in {limit_gb:g} GB.")
    return "\n".join(lines)
