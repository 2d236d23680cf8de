"""Train a diffusion featurizer data-parallel over several processes.

Launch with torchrun, one process per GPU (NCCL) or a few on CPUs (gloo)::

    torchrun --nproc_per_node=2 examples/train_distributed.py --device cpu
    torchrun --nproc_per_node=4 examples/train_distributed.py --device cuda

    # two machines, four GPUs each (run on both, --node_rank 0 and 1)
    torchrun --nnodes=2 --nproc_per_node=4 --node_rank=0 \\
        --rdzv_backend=c10d --rdzv_endpoint=HOST0:29500 \\
        examples/train_distributed.py --device cuda

Every process runs this same script and calls the same ``fit`` on the same
states; each computes its share of every global batch of ``batch_size``
states. Process 0 saves the fitted featurizer; the others hold an identical
copy. Run without torchrun, it trains in one process, the same run up to
floating-point summation order.
"""

import argparse
import os

import joblib
import torch
import torch.distributed as dist

from skdiffusion import DiffusionFeaturizer
from skdiffusion.datasets import make_lorenz63


def main():
    parser = argparse.ArgumentParser(description="Data-parallel featurizer fit.")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--n-states", type=int, default=20_000)
    parser.add_argument("--max-iter", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=2048)
    parser.add_argument("--out", default="featurizer.joblib")
    args = parser.parse_args()

    launched = "WORLD_SIZE" in os.environ  # set by torchrun
    device = args.device
    if launched:
        if args.device == "cuda":
            local_rank = int(os.environ["LOCAL_RANK"])
            torch.cuda.set_device(local_rank)
            device = f"cuda:{local_rank}"
        dist.init_process_group("nccl" if args.device == "cuda" else "gloo")
    rank = dist.get_rank() if launched else 0

    # Every process makes (or memory-maps) the same states: same seed.
    X = make_lorenz63(4, args.n_states // 4 + 10, random_state=0, cache=False).X
    featurizer = DiffusionFeaturizer(
        max_iter=args.max_iter,
        batch_size=args.batch_size,
        random_state=0,
        device=device,
        verbose=int(rank == 0),
    ).fit(X)

    if rank == 0:
        joblib.dump(featurizer, args.out)  # loads on any machine, GPU or not
        print(
            f"trained {featurizer.n_iter_} steps on "
            f"{dist.get_world_size() if launched else 1} process(es); "
            f"final loss {featurizer.loss_curve_[-1]:.4f}; saved {args.out}"
        )
    if launched:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
