"""The README's main job (``make demo``).

Until the surrogate comparison exists, it generates a Lorenz 63 dataset and
prints its statistics.
"""

import numpy as np

from skdiffusion.datasets import make_lorenz63


def main():
    data = make_lorenz63(n_trajectories=16, n_steps=10_000, random_state=0)
    print(f"Lorenz 63: {data.trajectories.shape[0]} trajectories x "
          f"{data.trajectories.shape[1]} steps, dt={data.dt}")
    print(f"X {data.X.shape}, y {data.y.shape} (increment over "
          f"{data.y_lead_steps if 'y_lead_steps' in data else 10} steps)")
    for name, values in (("X", data.X), ("y", data.y)):
        print(f"{name}: mean {np.round(values.mean(0), 4)}, std {np.round(values.std(0), 4)}")


if __name__ == "__main__":
    main()
