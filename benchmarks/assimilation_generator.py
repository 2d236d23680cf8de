"""Lorenz 96 data assimilation with two ensemble generators: which conv network.

Runs the quick preset of ``python -m skdiffusion.experiments --experiment
assimilation96`` (tuned 3D-Var, LETKF(10) and diffusion EnOI(50) on two
observation networks) twice, in one process: with the generator its tables
were measured with (``kernel_size=5``, velocity prediction), and with the
defaults of ``DiffusionFeaturizer(architecture="conv")`` (kernel 3, noise
prediction: the recipe of the best surrogate features). Only the diffusion
rows differ; each run prints its test table, wall time and rank histograms.

Usage::

    python benchmarks/assimilation_generator.py
"""

import dataclasses
import os
import time

# The machine is shared: spinning OpenMP threads slow everyone's small ops
# down (must be set before torch is imported).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from skdiffusion.experiments import assimilation_lorenz96 as experiment  # noqa: E402


def main():
    preset = experiment.PRESETS["quick"]
    defaults = {k: v for k, v in preset.featurizer.items()
                if k not in ("kernel_size", "parameterization")}
    variants = {
        "kernel 5, velocity (the experiment's)": preset,
        "conv defaults (kernel 3, noise)": dataclasses.replace(
            preset, featurizer=defaults),
    }
    print(f"python benchmarks/assimilation_generator.py; {os.cpu_count()} CPU cores, "
          f"load {os.getloadavg()[0]:.1f}", flush=True)
    for name, variant in variants.items():
        start = time.perf_counter()
        table = experiment.lorenz96_assimilation(variant, random_state=0)
        test = table[table.stage == "test"].drop(columns="stage")
        print(f"\n== {name}: {time.perf_counter() - start:.0f} s", flush=True)
        print(test.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
        for network, counts in table.attrs["rank_histograms"].items():
            shares = counts / counts.sum() * len(counts)
            print(f"rank histogram ({network}; 1 = flat): first {shares[0]:.2f}, "
                  f"last {shares[-1]:.2f}", flush=True)


if __name__ == "__main__":
    main()
