"""Why the activation matters for transfer + ridge: random features, no training.

A ridge head on features ``act(X W + b)`` with random ``W`` and ``b`` fits the
0.1 MTU Lorenz 63 increment only as well as sums of ``act`` can. ReLU sums are
piecewise linear in the state, smooth activations are not: printed is the
test RMSE (normalised units) for each activation and input scale, with 1536
features (the paper's feature count) and the same random ``W`` and ``b``
throughout. This is the floor a ReLU denoiser's features start from, which
training moves but does not remove (docs: the featurizer's training recipe).

    python benchmarks/activation_floor.py
"""

import numpy as np
from scipy.special import expit

from skdiffusion.datasets import make_lorenz63

N_FEATURES = 1536
ACTIVATIONS = {
    "relu": lambda z: np.maximum(z, 0.0),
    "silu": lambda z: z * expit(z),
    # tanh approximation, as torch's F.gelu(approximate="tanh")
    "gelu": lambda z: 0.5 * z * (1 + np.tanh(0.7978845608 * (z + 0.044715 * z**3))),
    "tanh": np.tanh,
    "sin": np.sin,
}


def ridge_rmse(F, y, F_test, y_test, alpha=1e-8):
    """Test RMSE of ridge on standardised features (penalty alpha per sample)."""
    mean, std = F.mean(axis=0), F.std(axis=0) + 1e-12
    F, F_test = (F - mean) / std, (F_test - mean) / std
    gram = F.T @ F + alpha * len(F) * np.eye(F.shape[1])
    coef = np.linalg.solve(gram, F.T @ (y - y.mean(axis=0)))
    return np.sqrt(np.mean((F_test @ coef + y.mean(axis=0) - y_test) ** 2))


def main():
    train = make_lorenz63(64, 2000, lead_steps=10, random_state=0)
    test = make_lorenz63(4, 2000, lead_steps=10, random_state=1)
    rng = np.random.default_rng(0)
    rows = rng.choice(len(train.X), size=2**16, replace=False)
    X, y = train.X[rows], train.y[rows]
    X_test, y_test = test.X[::7], test.y[::7]
    W = rng.normal(size=(X.shape[1], N_FEATURES))
    b = rng.uniform(-2, 2, size=N_FEATURES)
    print(f"ridge on {N_FEATURES} random features act(scale * X W + b), "
          f"{len(X)} training pairs; test RMSE of the 0.1 MTU increment")
    print("scale  " + "".join(f"{name:>10s}" for name in ACTIVATIONS))
    for scale in (0.5, 1.0, 2.0):
        errors = [ridge_rmse(act(scale * X @ W + b), y, act(scale * X_test @ W + b),
                             y_test) for act in ACTIVATIONS.values()]
        print(f"{scale:5.1f}  " + "".join(f"{e:10.2e}" for e in errors))


if __name__ == "__main__":
    main()
