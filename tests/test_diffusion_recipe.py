"""Tests of the training-recipe options of skdiffusion.diffusion (issue 7):
how the training pseudo-times are drawn."""

import pytest
import torch

from skdiffusion.diffusion import Denoiser, get_schedule, train_denoiser
from skdiffusion.diffusion.training import T_SAMPLINGS, step_probabilities


@pytest.fixture(scope="module", autouse=True)
def single_thread():
    """Tiny networks run faster on one thread, above all on a loaded machine."""
    n_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n_threads)


class RecordingDenoiser(Denoiser):
    """A tiny denoiser that remembers the steps it was trained on."""

    def __init__(self):
        super().__init__(3, n_hidden=8, n_blocks=1, time_embedding_dim=8)
        self.seen = []

    def forward(self, z, t):
        self.seen.append(torch.as_tensor(t).flatten().clone())
        return super().forward(z, t)


def steps_drawn(t_sampling, n_iter=4, batch_size=4096):
    torch.manual_seed(0)
    model = RecordingDenoiser()
    train_denoiser(
        model,
        torch.randn(batch_size, 3),
        schedule=get_schedule("cosine"),
        max_iter=n_iter,
        batch_size=batch_size,
        generator=torch.Generator().manual_seed(0),
        t_sampling=t_sampling,
    )
    return torch.cat(model.seen)


@pytest.mark.parametrize("name", T_SAMPLINGS)
def test_step_probabilities_are_a_distribution_over_1_to_T(name):
    p = step_probabilities(name, 1000)
    assert p.shape == (1000,)
    assert p.dtype == torch.float64
    assert torch.all(p > 0)
    assert p.sum().item() == pytest.approx(1.0, abs=1e-12)


def test_uniform_is_flat_and_low_follows_inverse_square_root():
    expected = torch.full((10,), 0.1, dtype=torch.float64)
    assert torch.allclose(step_probabilities("uniform", 10), expected)
    low = step_probabilities("low", 1000)
    # p(t) * sqrt(t) is constant, so p(1) / p(100) = 10
    assert (low[0] / low[99]).item() == pytest.approx(10.0)
    # about a third of the mass in the lowest tenth of the steps
    assert low[:100].sum().item() == pytest.approx(0.31, abs=0.02)


def test_unknown_t_sampling_is_named():
    with pytest.raises(ValueError, match="t_sampling 'log'"):
        step_probabilities("log", 1000)
    with pytest.raises(ValueError, match="t_sampling"):
        steps_drawn("log", n_iter=1, batch_size=8)


@pytest.mark.parametrize(("name", "low_share"), [("uniform", 0.1), ("low", 0.31)])
def test_training_draws_steps_from_the_chosen_distribution(name, low_share):
    t = steps_drawn(name)
    assert t.min() >= 1 and t.max() <= 1000
    assert (t <= 100).double().mean().item() == pytest.approx(low_share, abs=0.02)


def test_uniform_t_sampling_keeps_the_default_draws():
    assert torch.equal(steps_drawn("uniform", n_iter=2, batch_size=64),
                       steps_drawn_default())


def steps_drawn_default():
    torch.manual_seed(0)
    model = RecordingDenoiser()
    train_denoiser(
        model,
        torch.randn(64, 3),
        schedule=get_schedule("cosine"),
        max_iter=2,
        batch_size=64,
        generator=torch.Generator().manual_seed(0),
    )
    return torch.cat(model.seen)


def test_featurizer_passes_t_sampling_to_training():
    import numpy as np

    from skdiffusion import DiffusionFeaturizer

    X = np.random.default_rng(0).normal(size=(64, 3))
    params = {"n_hidden": 8, "n_blocks": 1, "time_embedding_dim": 8,
              "max_iter": 3, "batch_size": 32, "random_state": 0}
    uniform = DiffusionFeaturizer(**params).fit(X)
    low = DiffusionFeaturizer(t_sampling="low", **params).fit(X)
    # same initial weights and batches, different steps: different losses
    assert uniform.loss_curve_ != low.loss_curve_
    with pytest.raises(ValueError, match="t_sampling"):
        DiffusionFeaturizer(t_sampling="log", **params).fit(X)
