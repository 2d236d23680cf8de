"""Check the GPU path of every torch estimator, and time training on the GPU.

1. Fits every torch estimator with ``device="cuda"`` (dense and convolutional
   featurizers, the dense, residual, convolutional, fine-tuned and
   shallow-head regressors), pickles each on the GPU machine, loads the
   pickles in a process that sees no GPU, and compares their CPU
   transform/predict outputs with the GPU ones.
2. Times training throughput at batch 16384 (the paper's) of the paper's
   featurizer and of a 3x256 dense regressor against a plain PyTorch loop of
   the same network (Adam, same loss, random batches), in steps per second.

Sized to stay under 8 minutes on one GPU (about 2,000 training steps at
batch 16384 and eight small fits in all). Without a GPU it
says so and exits with status 1; ``--device cpu --tiny`` runs the same
checks on the CPU with small sizes (a smoke test of the script itself).

    python benchmarks/gpu_check.py
    python benchmarks/gpu_check.py --device cpu --tiny
"""

import argparse
import io
import os
import subprocess
import sys
import tempfile
import time

import joblib
import numpy as np
import torch

from skdiffusion import (
    ConvRegressor,
    DenseRegressor,
    DiffusionFeaturizer,
    FineTunedRegressor,
    ResidualRegressor,
    RFFFeaturizer,
    ShallowHeadRegressor,
)
from skdiffusion.diffusion import build_denoiser, get_schedule


def sizes(tiny):
    if tiny:
        return {
            "rows": 2_000,
            "steps": 20,
            "batch": 256,
            "width": 16,
            "bench_rows": 8_192,
            "bench_batch": 1_024,
            "bench_steps": 6,
        }
    return {
        "rows": 50_000,
        "steps": 200,
        "batch": 4_096,
        "width": 256,
        "bench_rows": 1_600_000,
        "bench_batch": 16_384,
        "bench_steps": 200,
    }


def lorenz_like(n, n_columns, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, n_columns)).astype(np.float32)


def estimators(device, s):
    """(name, estimator, fit data, method) of every torch estimator."""
    train = {
        "max_iter": s["steps"],
        "batch_size": s["batch"],
        "random_state": 0,
        "device": device,
    }
    head = {**train, "n_iter_no_change": None}
    X3, ring = lorenz_like(s["rows"], 3), lorenz_like(s["rows"], 16, seed=1)
    y3, y_ring = np.tanh(X3), np.roll(ring, 1, axis=1) - ring
    dense = DiffusionFeaturizer(n_hidden=s["width"], **train)
    conv = DiffusionFeaturizer(
        architecture="conv", n_hidden=min(s["width"], 64), **train
    )
    return [
        ("DiffusionFeaturizer (dense)", dense, (X3,), "transform"),
        ("DiffusionFeaturizer (conv)", conv, (ring,), "transform"),
        (
            "DenseRegressor",
            DenseRegressor((s["width"],) * 3, **head),
            (X3, y3),
            "predict",
        ),
        (
            "ResidualRegressor",
            ResidualRegressor(s["width"], **head),
            (X3, y3),
            "predict",
        ),
        (
            "ConvRegressor",
            ConvRegressor(min(s["width"], 64), **head),
            (ring, y_ring),
            "predict",
        ),
        (
            "FineTunedRegressor (dense)",
            FineTunedRegressor(dense, **head),
            (X3, y3),
            "predict",
        ),
        (
            "ShallowHeadRegressor",
            ShallowHeadRegressor(dense, feature_times=(0, 400), **head),
            (X3, y3),
            "predict",
        ),
        (
            "ShallowHeadRegressor (RFF)",
            ShallowHeadRegressor(RFFFeaturizer(1536, random_state=0), **head),
            (X3, y3),
            "predict",
        ),
        (
            "FineTunedRegressor (conv)",
            FineTunedRegressor(conv, **head),
            (ring, y_ring),
            "predict",
        ),
    ]


def check_estimators(device, s, folder):
    """Fit on `device`, pickle, load in a process without a GPU, compare."""
    rows, fitted = [], []
    for name, estimator, data, method in estimators(device, s):
        start = time.perf_counter()
        estimator.fit(*data)
        fit_time = time.perf_counter() - start
        inputs = data[0][:1_000]
        output = getattr(estimator, method)(inputs)
        pickled = io.BytesIO()
        joblib.dump(estimator, pickled)
        fitted.append((name, pickled.getvalue(), method, inputs))
        rows.append(
            {
                "name": name,
                "fit_s": fit_time,
                "output": output,
                "bytes": len(pickled.getvalue()),
            }
        )
    path = os.path.join(folder, "fitted.joblib")
    joblib.dump(fitted, path)
    # a fresh process that sees no GPU: the pickles must load and run there
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    subprocess.run(
        [sys.executable, __file__, "--load-on-cpu", path], env=env, check=True
    )
    on_cpu = joblib.load(path + ".cpu")
    for row in rows:
        cpu = on_cpu[row["name"]]
        row["max_abs_diff"] = float(np.max(np.abs(cpu - row["output"])))
        row["scale"] = float(np.max(np.abs(row["output"])))
    return rows


def load_on_cpu(path):
    assert not torch.cuda.is_available()
    outputs = {}
    for name, pickled, method, inputs in joblib.load(path):
        estimator = joblib.load(io.BytesIO(pickled))
        estimator.set_params(device="cpu")
        if isinstance(estimator, FineTunedRegressor):
            estimator.featurizer.set_params(device="cpu")
        outputs[name] = getattr(estimator, method)(inputs)
    joblib.dump(outputs, path + ".cpu")


def synchronize(device):
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def package_steps_per_second(make, X, y, n_steps, device):
    """Steps per second of ``make(max_iter).fit``, fixed costs cancelled.

    Two fits, of n and 3n steps: their difference is 2n steps of training.
    """
    times = []
    for max_iter in (n_steps, 3 * n_steps):
        estimator = make(max_iter)
        synchronize(device)
        start = time.perf_counter()
        estimator.fit(X, y) if y is not None else estimator.fit(X)
        synchronize(device)
        times.append(time.perf_counter() - start)
    return 2 * n_steps / (times[1] - times[0])


def plain_steps_per_second(model, loss_of, n_rows, batch, n_steps, device):
    """Steps per second of a bare Adam loop: random rows, loss, backward, step."""
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-4)

    def step():
        rows = torch.randint(n_rows, (batch,), device=device)
        loss = loss_of(rows)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for _ in range(5):
        step()
    synchronize(device)
    start = time.perf_counter()
    for _ in range(n_steps):
        step()
    synchronize(device)
    return n_steps / (time.perf_counter() - start)


def throughput(device, s):
    """Package against plain PyTorch, steps per second at the benchmark batch."""
    n, batch, steps = s["bench_rows"], s["bench_batch"], s["bench_steps"]
    width = s["width"]
    X = lorenz_like(n, 3)
    y = np.tanh(X)
    X_t, y_t = torch.from_numpy(X).to(device), torch.from_numpy(y).to(device)
    results = []

    # the paper's featurizer: ReLU, constant 3e-4, float32
    def featurizer(max_iter):
        return DiffusionFeaturizer(
            n_hidden=width,
            activation="relu",
            learning_rate=3e-4,
            lr_schedule="constant",
            warmup_iter=0,
            mixed_precision=False,
            batch_size=batch,
            max_iter=max_iter,
            random_state=0,
            device=device,
        )

    package = package_steps_per_second(featurizer, X, None, steps, device)
    torch.manual_seed(0)
    denoiser = build_denoiser(
        "dense",
        3,
        n_hidden=width,
        n_blocks=3,
        time_embedding_dim=512,
        n_steps=1000,
        activation="relu",
    ).to(device)
    alpha_bar = get_schedule("cosine", 1000).alpha_bar.to(device, torch.float32)

    def denoising(rows):
        x = X_t[rows]
        t = torch.randint(1, 1001, (len(rows),), device=device)
        eps = torch.randn_like(x)
        a = alpha_bar[t].unsqueeze(1)
        z = a.sqrt() * x + (1 - a).sqrt() * eps
        v = a.sqrt() * eps - (1 - a).sqrt() * x
        return torch.nn.functional.mse_loss(denoiser(z, t), v)

    plain = plain_steps_per_second(denoiser, denoising, n, batch, steps, device)
    results.append(("featurizer (paper network)", package, plain))

    def regressor(max_iter):
        return DenseRegressor(
            (width,) * 3,
            batch_size=batch,
            max_iter=max_iter,
            n_iter_no_change=None,
            random_state=0,
            device=device,
        )

    package = package_steps_per_second(regressor, X, y, steps, device)
    layers = [torch.nn.Linear(3, width), torch.nn.ReLU()]
    for _ in range(2):
        layers += [torch.nn.Linear(width, width), torch.nn.ReLU()]
    mlp = torch.nn.Sequential(*layers, torch.nn.Linear(width, 3)).to(device)

    def regression(rows):
        return torch.nn.functional.mse_loss(mlp(X_t[rows]), y_t[rows])

    plain = plain_steps_per_second(mlp, regression, n, batch, steps, device)
    results.append((f"DenseRegressor ({width}x3)", package, plain))
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument("--tiny", action="store_true", help="small sizes (smoke test)")
    parser.add_argument("--load-on-cpu", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load_on_cpu:
        load_on_cpu(args.load_on_cpu)
        return
    if args.device == "cuda" and not torch.cuda.is_available():
        print(
            "No CUDA GPU is visible to torch here: nothing to check. Run this "
            "on a GPU machine, or `--device cpu --tiny` to test the script."
        )
        sys.exit(1)
    start = time.perf_counter()
    s = sizes(args.tiny)
    where = (
        torch.cuda.get_device_name()
        if args.device == "cuda"
        else f"CPU, {torch.get_num_threads()} threads"
    )
    print(f"Device: {where}; torch {torch.__version__}; sizes {s}", flush=True)
    with tempfile.TemporaryDirectory() as folder:
        rows = check_estimators(args.device, s, folder)
    print(
        f"\n{'estimator':<30}{'fit s':>8}{'pickle MB':>11}"
        f"{'max |CPU - GPU|':>17}{'max |out|':>11}  verdict"
    )
    failed = False
    for row in rows:
        ok = row["max_abs_diff"] <= 1e-3 * max(1.0, row["scale"])
        failed |= not ok
        print(
            f"{row['name']:<30}{row['fit_s']:>8.1f}{row['bytes'] / 1e6:>11.2f}"
            f"{row['max_abs_diff']:>17.2e}{row['scale']:>11.2f}  "
            f"{'ok' if ok else 'DIFFERS'}",
            flush=True,
        )
    print(
        f"\nTraining throughput at batch {s['bench_batch']} "
        f"({s['bench_rows']:,} rows), steps per second"
    )
    print(f"{'network':<30}{'package':>10}{'plain torch':>13}{'ratio':>8}")
    for name, package, plain in throughput(args.device, s):
        print(f"{name:<30}{package:>10.1f}{plain:>13.1f}{package / plain:>8.2f}")
    print(f"\nWall time {time.perf_counter() - start:.0f} s")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
