"""Denoising diffusion models as scikit-learn tools for dynamical systems.

The estimators are imported lazily so that ``import skdiffusion`` (and
``skdiffusion.datasets``) stays fast and does not import torch until an
estimator that needs it is used.
"""

import importlib
import os
import sys
import warnings

__version__ = "0.1.0.dev0"

# torch's OpenMP threads spin while they wait for work; on cores shared with
# other processes that made small-network training several times slower
# (benchmarks/bench_omp_wait.py). Passive waiting only takes effect when set
# before torch is first imported: here, unless the user chose a policy.
if "torch" not in sys.modules:
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
elif "OMP_WAIT_POLICY" not in os.environ:
    warnings.warn(
        "torch was imported before skdiffusion, so its OpenMP threads spin "
        "while they wait, which can make training several times slower on a "
        "busy machine. Import skdiffusion before torch, or set the environment "
        "variable OMP_WAIT_POLICY=PASSIVE before starting Python.",
        UserWarning,
        stacklevel=2,
    )

# public name -> submodule that defines it
_EXPORTS = {
    "DiffusionFeaturizer": "featurizers",
    "RFFFeaturizer": "featurizers",
    "ConvRegressor": "neural",
    "DenseRegressor": "neural",
    "FineTunedRegressor": "neural",
    "ResidualRegressor": "neural",
    "ShallowHeadRegressor": "neural",
    "StreamingRidge": "linear_model",
    "StreamingRidgeCV": "linear_model",
    "SurrogateForecaster": "surrogate",
    "PeriodicPatches": "spatial",
    "SiteWiseRegressor": "spatial",
}
_SUBMODULES = [
    "assimilation",
    "datasets",
    "diffusion",
    "distributed",
    "engine",
    "experiments",
    "featurizers",
    "linear_model",
    "metrics",
    "neural",
    "spatial",
    "surrogate",
]

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        module = importlib.import_module(f".{_EXPORTS[name]}", __name__)
        return getattr(module, name)
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'skdiffusion' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__) | set(_SUBMODULES))
