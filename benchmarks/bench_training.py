"""Training throughput of the denoiser: skdiffusion vs the obvious PyTorch code.

The obvious implementation embeds the step of every sample and applies each
block's FiLM Linear(512 -> 512) to every sample. skdiffusion's training step
computes FiLM once for each of the 1001 steps and gathers rows by t, because
FiLM depends on t only. Both train the paper's network (3 -> 256, 3 blocks,
512-d embedding) on the velocity loss with Adam, in float32.

Prints samples/s of a training step for both at the paper's batch size 16384
and at the naive version's best batch size, and the ratios; also for
skdiffusion's optional bfloat16 mixed precision (``autocast_dtype``) where the
CPU has fast bfloat16. All are measured in the same run, interleaved, best of
several repeats, by wall clock and by CPU time, so machine load affects them
alike.

    python benchmarks/bench_training.py [--quick] [--threads N]
"""

import argparse
import math
import time

import torch
import torch.nn.functional as F
from torch import nn

from skdiffusion.diffusion import (
    Denoiser,
    cosine_schedule,
    fast_autocast_dtype,
    train_denoiser,
)


class NaiveBlock(nn.Module):
    def __init__(self, n_hidden=256, time_embedding_dim=512):
        super().__init__()
        self.norm = nn.LayerNorm(n_hidden, elementwise_affine=False)
        self.film = nn.Linear(time_embedding_dim, 2 * n_hidden)
        self.fc1 = nn.Linear(n_hidden, n_hidden)
        self.fc2 = nn.Linear(n_hidden, n_hidden)
        self.gamma = nn.Parameter(torch.full((n_hidden,), 1e-6))

    def forward(self, h, embedding):
        scale, shift = self.film(embedding).chunk(2, dim=-1)
        y = self.norm(h) * (1 + scale) + shift
        y = self.fc2(torch.relu(self.fc1(y)))
        return h + self.gamma * y


class NaiveDenoiser(nn.Module):
    """The paper's denoiser written the obvious way: FiLM per sample."""

    def __init__(self, n_features=3, n_hidden=256, n_blocks=3, dim=512):
        super().__init__()
        self.dim = dim
        self.in_proj = nn.Linear(n_features, n_hidden)
        self.blocks = nn.ModuleList(NaiveBlock(n_hidden, dim) for _ in range(n_blocks))
        self.out_proj = nn.Linear(n_hidden, n_features)

    def embed(self, t):
        half = self.dim // 2
        frequencies = torch.exp(-math.log(10000) * torch.arange(half) / (half - 1))
        angles = t[:, None].float() * frequencies
        return torch.cat([angles.sin(), angles.cos()], dim=-1)

    def forward(self, z, t):
        embedding = self.embed(t)
        h = self.in_proj(z)
        for block in self.blocks:
            h = block(h, embedding)
        return self.out_proj(h)


def naive_steps(model, optimizer, X, alpha_bar, batch_size, n_steps):
    for _ in range(n_steps):
        x = X[torch.randint(0, X.shape[0], (batch_size,))]
        t = torch.randint(1, alpha_bar.shape[0], (batch_size,))
        eps = torch.randn_like(x)
        ab = alpha_bar[t][:, None]
        z = ab.sqrt() * x + (1 - ab).sqrt() * eps
        v = ab.sqrt() * eps - (1 - ab).sqrt() * x
        loss = F.mse_loss(model(z, t), v)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        loss.item()


def best_rates(runs, batch_size, n_steps, repeats):
    """Samples/s of each run's fastest repeat, by wall clock and by CPU time.

    The runs take turns within each repeat, so a burst of load from other
    processes hits them alike. CPU time (this process, all threads) leaves
    out the time others hold the cores: the steadier figure under load.
    """
    for run in runs.values():
        run(batch_size, 1)  # warm-up: allocations, oneDNN primitives
    wall = dict.fromkeys(runs, math.inf)
    cpu = dict.fromkeys(runs, math.inf)
    for _ in range(repeats):
        for name, run in runs.items():
            wall_start, cpu_start = time.perf_counter(), time.process_time()
            run(batch_size, n_steps)
            wall[name] = min(wall[name], time.perf_counter() - wall_start)
            cpu[name] = min(cpu[name], time.process_time() - cpu_start)
    samples = batch_size * n_steps
    return {name: (samples / wall[name], samples / cpu[name]) for name in runs}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer sizes and steps")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads (default: torch's)"
    )
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if args.quick:
        batch_sizes, n_steps, repeats = [1024, 4096, 16384], 2, 2
    else:
        batch_sizes, n_steps, repeats = [1024, 2048, 4096, 8192, 16384], 3, 3

    torch.manual_seed(0)
    X = torch.randn(200_000, 3)
    schedule = cosine_schedule()
    alpha_bar = schedule.alpha_bar.float()
    naive = NaiveDenoiser()
    naive_optimizer = torch.optim.Adam(naive.parameters(), lr=3e-4)
    model = Denoiser(3)
    generator = torch.Generator().manual_seed(0)
    bf16 = fast_autocast_dtype("cpu")

    def run_naive(batch_size, steps):
        naive_steps(naive, naive_optimizer, X, alpha_bar, batch_size, steps)

    def package(autocast_dtype):
        def run(batch_size, steps):
            train_denoiser(
                model,
                X,
                schedule=schedule,
                max_iter=steps,
                batch_size=batch_size,
                learning_rate=3e-4,
                eval_every=steps,
                generator=generator,
                autocast_dtype=autocast_dtype,
            )

        return run

    runs = {"naive": run_naive, "skdiffusion": package(None)}
    if bf16 is not None:
        runs["skdiffusion bf16"] = package(bf16)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; "
        f"{n_steps} steps per timing, best of {repeats}; samples/s by wall clock "
        "(by CPU time in brackets)"
    )
    print(f"{'batch':>6}" + "".join(f"{name:>26}" for name in runs))
    rates = {}
    for batch_size in batch_sizes:
        rates[batch_size] = best_rates(runs, batch_size, n_steps, repeats)
        cells = (
            f"{wall:12.0f} ({cpu:9.0f})" for wall, cpu in rates[batch_size].values()
        )
        print(f"{batch_size:6d}" + "".join(f"{cell:>26}" for cell in cells), flush=True)

    def ratio(name, batch_size, clock):
        return rates[batch_size][name][clock] / rates[batch_size]["naive"][clock]

    print()
    for clock, label in ((0, "wall clock"), (1, "CPU time")):
        best = max(batch_sizes, key=lambda b: rates[b]["naive"][clock])
        for name in runs:
            if name == "naive":
                continue
            largest = batch_sizes[-1]
            print(
                f"{label:>10}: {name} / naive = "
                f"{ratio(name, largest, clock):.2f}x at batch {largest} (target 3), "
                f"{ratio(name, best, clock):.2f}x at naive's best batch {best} "
                "(target 1.5)"
            )


if __name__ == "__main__":
    main()
