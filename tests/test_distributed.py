"""Data-parallel training (skdiffusion.distributed through skdiffusion.engine):
two gloo processes on the CPU train the same weights as one process with the
same global batch and seed, and a process that raises stops them all."""

import datetime
import os
import pickle
import socket

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

from skdiffusion import DenseRegressor, DiffusionFeaturizer
from skdiffusion.distributed import DistributedTrainingError, share_of
from skdiffusion.engine import train

# A process group that is not torn down within this many seconds is a hang.
TIMEOUT = 120


@pytest.fixture(autouse=True, scope="module")
def _one_thread(one_torch_thread):
    """torch on one thread for this module (the fixture is in conftest)."""


def states(n=96, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 3)).astype(np.float32)


def featurizer():
    return DiffusionFeaturizer(
        n_hidden=16,
        n_blocks=1,
        feature_times=(0, 50),
        max_iter=12,
        batch_size=32,
        eval_every=4,
        validation_fraction=0.25,
        learning_rate=1e-3,
        random_state=0,
        device="cpu",
    )


def regressor():
    return DenseRegressor(
        hidden_layer_sizes=(16,),
        max_iter=12,
        batch_size=33,  # not a multiple of 2: unequal shares
        eval_every=4,
        early_stopping=True,
        learning_rate=1e-2,
        random_state=0,
        device="cpu",
    )


def fit(name):
    X = states()
    if name == "featurizer":
        return featurizer().fit(X)
    y = np.sin(X) @ np.array([[1.0], [-2.0], [0.5]], dtype=np.float32)
    return regressor().fit(X, y)


def weights(estimator):
    if isinstance(estimator, DiffusionFeaturizer):
        return dict(estimator.network_state_)
    return {k: v.numpy() for k, v in estimator.module_.state_dict().items()}


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _worker(rank, world_size, port, out_dir, job):
    torch.set_num_threads(1)
    torch.distributed.init_process_group(
        "gloo",
        init_method=f"tcp://127.0.0.1:{port}",
        rank=rank,
        world_size=world_size,
        timeout=datetime.timedelta(seconds=TIMEOUT),
    )
    try:
        result = job(rank)
    except Exception as error:  # recorded for the test to read
        result = error
    finally:
        torch.distributed.destroy_process_group()
    with open(os.path.join(out_dir, f"rank{rank}.pkl"), "wb") as file:
        pickle.dump(result, file)


def run_processes(job, tmp_path, world_size=2):
    """``job(rank)`` in `world_size` gloo processes; each one's result or error."""
    context = mp.start_processes(
        _worker,
        args=(world_size, _free_port(), str(tmp_path), job),
        nprocs=world_size,
        join=False,
        start_method="spawn",
    )
    while not context.join(timeout=TIMEOUT):
        pass
    results = []
    for rank in range(world_size):
        with open(tmp_path / f"rank{rank}.pkl", "rb") as file:
            results.append(pickle.load(file))
    return results


def _raise_on_rank_one(rank):
    X = torch.randn(64, 2, generator=torch.Generator().manual_seed(0))
    module = torch.nn.Linear(2, 1)
    calls = []

    def batch_loss(rows, share=slice(None)):
        calls.append(1)
        if rank == 1 and len(calls) == 3:
            raise ValueError("bad batch on rank one")
        return module(X[rows][share]).pow(2).mean()

    train(module, batch_loss, 64, max_iter=10, batch_size=16, learning_rate=1e-2)


def _loss_without_share(rank):
    module = torch.nn.Linear(2, 1)
    X = torch.randn(8, 2)
    train(
        module,
        lambda rows: module(X[rows]).pow(2).mean(),
        8,
        max_iter=2,
        batch_size=4,
        learning_rate=1e-2,
    )


def _outcome(job, rank):
    try:
        return job(rank)
    except Exception as error:
        return error


def _every_scenario(rank):
    """One process group for all the scenarios: starting one costs ~20 s here.

    A failed scenario leaves the processes in step (they all raised after
    the same collective), so the next one can use the group.
    """
    return {
        "featurizer": _outcome(lambda rank: fit("featurizer"), rank),
        "regressor": _outcome(lambda rank: fit("regressor"), rank),
        "raising": _outcome(_raise_on_rank_one, rank),
        "no share": _outcome(_loss_without_share, rank),
    }


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory):
    """Each scenario's result (or error) in process 0 and process 1."""
    first, second = run_processes(_every_scenario, tmp_path_factory.mktemp("ranks"))
    return {name: (first[name], second[name]) for name in first}


@pytest.mark.parametrize("name", ["featurizer", "regressor"])
def test_two_processes_train_the_weights_of_one(name, two_processes):
    alone = fit(name)
    first, second = two_processes[name]
    for key, value in weights(alone).items():
        np.testing.assert_allclose(weights(first)[key], value, rtol=1e-4, atol=1e-5)
        # the copies agree bit for bit
        np.testing.assert_array_equal(weights(second)[key], weights(first)[key])
    np.testing.assert_allclose(first.loss_curve_, alone.loss_curve_, rtol=1e-5)
    assert first.validation_scores_ == second.validation_scores_
    assert first.n_iter_ == alone.n_iter_ == 12


def test_the_tolerance_can_tell_a_different_seed():
    """The tolerance above is tight enough to see other draws."""
    alone = fit("regressor")
    other = regressor().set_params(random_state=1)
    X = states()
    other.fit(X, np.sin(X) @ np.array([[1.0], [-2.0], [0.5]], dtype=np.float32))
    key = "output.weight"
    assert not np.allclose(weights(other)[key], weights(alone)[key], rtol=1e-4)


def test_a_raising_process_stops_every_process_with_a_clear_error(two_processes):
    first, second = two_processes["raising"]
    assert isinstance(second, ValueError) and "bad batch" in str(second)
    assert isinstance(first, DistributedTrainingError)
    assert "Process(es) [1] of 2 raised" in str(first)


def test_a_loss_without_share_is_refused_before_training(two_processes):
    for error in two_processes["no share"]:
        assert isinstance(error, TypeError) and "'share' keyword" in str(error)


@pytest.mark.parametrize("n, size", [(33, 2), (16, 3), (5, 5)])
def test_shares_cover_the_batch_once_in_order(n, size):
    shares = [share_of(n, rank, size) for rank in range(size)]
    covered = np.concatenate([np.arange(n)[share] for share in shares])
    np.testing.assert_array_equal(covered, np.arange(n))
    sizes = [share.stop - share.start for share in shares]
    assert max(sizes) - min(sizes) <= 1
