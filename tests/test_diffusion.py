"""Tests of skdiffusion.diffusion: schedules, parameterisations, network,
training loop and samplers. Tiny networks and short runs throughout."""

import math
import pickle

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from skdiffusion.datasets import make_lorenz63
from skdiffusion.diffusion import (
    PARAMETERIZATIONS,
    Denoiser,
    ResidualBlock,
    Schedule,
    cosine_schedule,
    denoising_loss,
    fast_autocast_dtype,
    get_schedule,
    linear_schedule,
    loss_target,
    partial_diffusion,
    sample_ddim,
    sample_ddpm,
    timestep_embedding,
    timestep_grid,
    to_noise,
    to_state,
    train_denoiser,
)
from skdiffusion.engine import TrainingDivergedError, TrainingHistory, learning_rate_at

SMALL = {"n_hidden": 32, "n_blocks": 2, "time_embedding_dim": 16}


def small_denoiser(seed=0, n_features=3, **kwargs):
    torch.manual_seed(seed)
    return Denoiser(n_features, **{**SMALL, **kwargs})


def randomise_gamma(model, seed=0):
    """Give every block a gamma of order 1 so that the blocks matter."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for block in model.blocks:
            block.gamma.copy_(torch.rand(block.gamma.shape, generator=generator) + 0.5)
    return model


@pytest.fixture(scope="module", autouse=True)
def single_thread():
    """Tiny networks run faster on one thread, above all on a loaded machine."""
    n_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n_threads)


@pytest.fixture(scope="module")
def lorenz():
    """1000 normalised Lorenz 63 states from 20 short trajectories, split 800/200."""
    bunch = make_lorenz63(20, 60, burn_in=300, random_state=0, dtype="float32")
    X = torch.as_tensor(bunch.X, dtype=torch.float32)
    X = X[torch.randperm(len(X), generator=torch.Generator().manual_seed(0))]
    return X[:800], X[800:]


@pytest.fixture(scope="module")
def trained(lorenz):
    X, _ = lorenz
    model = small_denoiser()
    history = train_denoiser(
        model,
        X,
        schedule=cosine_schedule(),
        max_iter=300,
        batch_size=256,
        learning_rate=3e-3,
        eval_every=100,
        generator=torch.Generator().manual_seed(0),
    )
    return model, history


# --- schedules ------------------------------------------------------------


@pytest.mark.parametrize("schedule", [cosine_schedule(), linear_schedule()])
def test_schedule_starts_clean_and_decreases(schedule):
    assert schedule.n_steps == 1000
    assert schedule.alpha_bar.shape == (1001,)
    assert schedule.alpha_bar[0] == 1.0
    assert torch.all(schedule.alpha_bar[1:] < schedule.alpha_bar[:-1])
    assert schedule.alpha_bar[-1] > 0
    torch.testing.assert_close(schedule.sigma**2, 1 - schedule.alpha_bar)


def test_cosine_schedule_matches_formula_until_clipping():
    s, T = 0.008, 1000
    schedule = cosine_schedule(T, s=s)

    def f(t):
        return math.cos(math.pi / 2 * (t / T + s) / (1 + s)) ** 2

    for t in (1, 10, 100, 500, 900):
        assert schedule.alpha_bar[t].item() == pytest.approx(f(t) / f(0), rel=1e-10)
    assert schedule.beta.max().item() == pytest.approx(0.9)
    assert schedule.beta[-1].item() == pytest.approx(0.9)  # clipped at the end
    assert torch.all(schedule.beta <= 0.9)


def test_linear_schedule_endpoints():
    schedule = linear_schedule(1000)
    assert schedule.beta[0] == 0
    assert schedule.beta[1].item() == pytest.approx(1e-4)
    assert schedule.beta[1000].item() == pytest.approx(0.03)
    assert schedule.alpha_bar[1].item() == pytest.approx(1 - 1e-4)


def test_get_schedule_by_name_and_errors():
    assert get_schedule("linear", 10).n_steps == 10
    torch.testing.assert_close(
        get_schedule("cosine").alpha_bar, cosine_schedule().alpha_bar
    )
    with pytest.raises(ValueError, match="sigmoid"):
        get_schedule("sigmoid")
    with pytest.raises(ValueError, match="n_steps"):
        cosine_schedule(0)
    assert isinstance(cosine_schedule(5), Schedule)


# --- parameterisations ----------------------------------------------------


@pytest.mark.parametrize("name", PARAMETERIZATIONS)
@pytest.mark.parametrize("tensor_levels", [False, True])
def test_parameterization_round_trips(name, tensor_levels):
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(50, 3, generator=generator, dtype=torch.float64)
    eps = torch.randn(50, 3, generator=generator, dtype=torch.float64)
    if tensor_levels:
        alpha_bar = torch.rand(50, 1, generator=generator, dtype=torch.float64)
        alpha_bar = alpha_bar.clamp(0.01, 0.99)
    else:
        alpha_bar = 0.3
    z = alpha_bar**0.5 * x + (1 - alpha_bar) ** 0.5 * eps
    target = loss_target(name, x, eps, alpha_bar)
    torch.testing.assert_close(to_state(name, target, z, alpha_bar), x)
    torch.testing.assert_close(to_noise(name, target, z, alpha_bar), eps)


def test_velocity_is_the_paper_definition():
    x, eps = torch.tensor([[2.0]]), torch.tensor([[-1.0]])
    v = loss_target("velocity", x, eps, 0.64)
    assert v.item() == pytest.approx(0.8 * -1.0 - 0.6 * 2.0)


@pytest.mark.parametrize("function", [loss_target, to_state, to_noise])
def test_unknown_parameterization_is_named(function):
    x = torch.zeros(1, 3)
    with pytest.raises(ValueError, match="'score'"):
        function("score", x, x, 0.5)


# --- network --------------------------------------------------------------


def test_paper_network_parameter_count():
    model = Denoiser(3)
    n, e = 256, 512
    per_block = (e * 2 * n + 2 * n) + 2 * (n * n + n) + n
    expected = (3 * n + n) + 3 * per_block + (n * 3 + 3)
    assert expected == 1_185_283
    assert sum(p.numel() for p in model.parameters()) == expected
    assert "embedding_table" not in model.state_dict()


def test_gamma_starts_at_one_in_a_million():
    for block in Denoiser(3).blocks:
        assert torch.all(block.gamma == 1e-6)


@pytest.mark.parametrize("activation", ["relu", "gelu", "silu"])
def test_block_applies_its_activation(activation):
    torch.manual_seed(0)
    block = ResidualBlock(4, 8, activation)
    block.gamma.data.fill_(1.0)
    h, gain, shift = torch.randn(5, 4), torch.rand(4) + 0.5, torch.randn(4)
    hidden = block.fc1(F.layer_norm(h, (4,)) * gain + shift)
    if activation == "relu":
        hidden = hidden.clamp(min=0)
    elif activation == "silu":
        hidden = hidden / (1 + torch.exp(-hidden))
    else:  # GELU, tanh approximation, written out
        hidden = 0.5 * hidden * (1 + torch.tanh(
            math.sqrt(2 / math.pi) * (hidden + 0.044715 * hidden**3)))
    torch.testing.assert_close(block(h, gain, shift), h + block.fc2(hidden))


def test_gelu_features_are_smooth_and_relu_ones_are_not():
    # second differences along a line: O(step^2) for a smooth function, O(step)
    # at the kinks of a piecewise-linear one
    line = torch.linspace(-1, 1, 2001)[:, None] * torch.ones(3)
    curvature = {}
    for activation in ("relu", "gelu", "silu"):
        torch.manual_seed(0)
        model = randomise_gamma(small_denoiser(activation=activation))
        features = model.features(line, [0])
        curvature[activation] = (features[2:] - 2 * features[1:-1] + features[:-2])
    step = 1e-3
    assert curvature["gelu"].abs().max() < 50 * step**2
    assert curvature["silu"].abs().max() < 50 * step**2
    assert curvature["relu"].abs().max() > 1e-2 * step


def test_unknown_activation_is_named():
    with pytest.raises(ValueError, match="'tanh'"):
        Denoiser(3, activation="tanh")
    with pytest.raises(ValueError, match="'tanh'"):
        ResidualBlock(4, 8, "tanh")


def test_denoiser_pickles_with_its_activation():
    model = randomise_gamma(small_denoiser(activation="silu"))
    copy = pickle.loads(pickle.dumps(model))
    z = torch.randn(5, 3)
    assert copy.activation == "silu"
    torch.testing.assert_close(copy(z, 100), model(z, 100))


def test_timestep_embedding_known_values():
    embedding = timestep_embedding(torch.tensor([0, 3]), dim=8, max_period=1000.0)
    assert embedding.shape == (2, 8)
    torch.testing.assert_close(embedding[0], torch.tensor([0.0] * 4 + [1.0] * 4))
    # frequencies 1, 0.1, 0.01, 0.001
    assert embedding[1, 0].item() == pytest.approx(math.sin(3.0))
    assert embedding[1, 3].item() == pytest.approx(math.sin(0.003), rel=1e-5)
    assert embedding[1, 7].item() == pytest.approx(math.cos(0.003))


def test_forward_shapes_and_single_step():
    model = randomise_gamma(small_denoiser(n_features=5))
    z = torch.randn(7, 5)
    assert model(z, torch.full((7,), 30)).shape == (7, 5)
    torch.testing.assert_close(model(z, 30), model(z, torch.full((7,), 30)))


@pytest.mark.parametrize("batch", [300, 50])  # tabulated (> 101 rows), distinct
def test_gathered_film_equals_per_sample_film(batch):
    model = randomise_gamma(small_denoiser(n_steps=100))
    generator = torch.Generator().manual_seed(1)
    z = torch.randn(batch, 3, generator=generator)
    t = torch.randint(1, 101, (batch,), generator=generator)
    per_sample = model.out_proj(model.trunk(z, model.film(t)))
    torch.testing.assert_close(model(z, t), per_sample)


def test_features_equal_last_block_of_the_forward_path():
    model = randomise_gamma(small_denoiser())
    x = torch.randn(20, 3, generator=torch.Generator().manual_seed(2))
    times = [0, 50, 400]
    captured = []
    hook = model.blocks[-1].register_forward_hook(
        lambda module, args, output: captured.append(output.detach())
    )
    with torch.no_grad():
        for time in times:
            model(x, torch.full((20,), time))
    hook.remove()
    features = model.features(x, times)
    assert features.shape == (20, 32 * len(times))
    torch.testing.assert_close(features, torch.cat(captured, dim=1))


def test_features_differ_between_times():
    model = randomise_gamma(small_denoiser())
    features = model.features(torch.randn(4, 3), [0, 600])
    assert not torch.allclose(features[:, :32], features[:, 32:])


# --- training -------------------------------------------------------------


def test_training_reduces_the_denoising_loss(lorenz, trained):
    _, X_test = lorenz
    model, history = trained
    untrained = small_denoiser()

    def loss(m):
        return denoising_loss(
            m,
            X_test,
            schedule=cosine_schedule(),
            generator=torch.Generator().manual_seed(5),
        )

    assert loss(model) < 0.7 * loss(untrained)
    assert len(history.loss_curve) == 3
    assert history.loss_curve[-1] < history.loss_curve[0]
    assert history.n_iter == 300


def test_bfloat16_autocast_trains_like_float32(lorenz):
    X, X_test = lorenz
    losses = {}
    for dtype in (None, torch.bfloat16):
        model = small_denoiser()
        train_denoiser(
            model,
            X,
            schedule=cosine_schedule(),
            max_iter=100,
            batch_size=256,
            learning_rate=3e-3,
            autocast_dtype=dtype,
            generator=torch.Generator().manual_seed(0),
        )
        losses[dtype] = denoising_loss(
            model,
            X_test,
            schedule=cosine_schedule(),
            generator=torch.Generator().manual_seed(5),
        )
    assert losses[torch.bfloat16] == pytest.approx(losses[None], rel=0.1)
    assert fast_autocast_dtype("cpu") in (None, torch.bfloat16)


def test_seeded_training_is_reproducible(lorenz):
    X, X_val = lorenz

    def fit():
        model = small_denoiser()
        history = train_denoiser(
            model,
            X,
            schedule=cosine_schedule(),
            max_iter=20,
            batch_size=64,
            X_val=X_val,
            eval_every=5,
            ema_decay=0.9,
            generator=torch.Generator().manual_seed(3),
        )
        return model, history

    (model_a, history_a), (model_b, history_b) = fit(), fit()
    assert history_a.loss_curve == history_b.loss_curve
    assert history_a.validation_scores == history_b.validation_scores
    for a, b in zip(
        model_a.state_dict().values(), model_b.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b)


def test_huge_learning_rate_raises_with_advice(lorenz):
    X, _ = lorenz
    model = small_denoiser()
    with pytest.raises(TrainingDivergedError, match="lower learning rate"):
        train_denoiser(
            model,
            X,
            schedule=cosine_schedule(),
            max_iter=200,
            batch_size=64,
            learning_rate=1e4,
            generator=torch.Generator().manual_seed(0),
        )
    assert issubclass(TrainingDivergedError, ValueError)


def test_warm_start_continues_exactly(lorenz):
    X = lorenz[0][:100]  # one batch of all rows: no reshuffling to restart
    schedule = cosine_schedule()

    def run(model, n_iter, generator, history=None):
        state = history.optimizer_state if history else None
        return train_denoiser(
            model,
            X,
            schedule=schedule,
            max_iter=n_iter,
            batch_size=100,
            generator=generator,
            eval_every=5,
            optimizer_state=state,
            history=history,
        )

    once = small_denoiser()
    run(once, 10, torch.Generator().manual_seed(4))
    twice, generator = small_denoiser(), torch.Generator().manual_seed(4)
    history = run(twice, 5, generator)
    history = run(twice, 5, generator, history)
    assert history.n_iter == 10 and len(history.loss_curve) == 2
    for a, b in zip(once.parameters(), twice.parameters(), strict=True):
        torch.testing.assert_close(a, b)


def test_zero_iterations_leave_the_network_untouched(lorenz):
    model = small_denoiser()
    before = [p.clone() for p in model.parameters()]
    history = train_denoiser(
        model, lorenz[0], schedule=cosine_schedule(), max_iter=0
    )
    assert history.loss_curve == [] and history.n_iter == 0
    assert all(
        torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True)
    )


def test_early_stopping_on_a_plateau(lorenz):
    X, X_val = lorenz
    history = train_denoiser(
        small_denoiser(),
        X,
        schedule=cosine_schedule(),
        max_iter=100,
        batch_size=32,
        eval_every=2,
        X_val=X_val[:64],
        n_iter_no_change=2,
        tol=1e9,
    )
    assert history.stopped_early
    assert history.n_iter == 6  # best at the 1st evaluation, 2 more without gain
    assert len(history.validation_scores) == 3


def test_ema_is_kept_apart_from_the_raw_weights(lorenz):
    model = small_denoiser()
    initial = {k: v.clone() for k, v in model.named_parameters()}
    history = train_denoiser(
        model,
        lorenz[0],
        schedule=cosine_schedule(),
        max_iter=5,
        batch_size=64,
        ema_decay=0.5,
        generator=torch.Generator().manual_seed(0),
    )
    assert set(history.ema) == set(initial)
    name = "out_proj.weight"
    raw = dict(model.named_parameters())[name]
    assert not torch.equal(history.ema[name], raw)
    assert not torch.equal(history.ema[name], initial[name])


def test_callback_and_verbose_report_progress(lorenz, capsys):
    infos = []
    train_denoiser(
        small_denoiser(),
        lorenz[0],
        schedule=cosine_schedule(),
        max_iter=4,
        batch_size=64,
        eval_every=2,
        callback=infos.append,
        verbose=1,
    )
    assert [info["iter"] for info in infos] == [2, 4]
    assert "loss" in capsys.readouterr().err
    train_denoiser(
        small_denoiser(),
        lorenz[0],
        schedule=cosine_schedule(),
        max_iter=2,
        batch_size=64,
    )
    assert capsys.readouterr() == ("", "")


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"max_iter": -1}, "max_iter"),
        ({"batch_size": 0}, "batch_size"),
        ({"learning_rate": 0.0}, "learning_rate"),
        ({"lr_schedule": "step"}, "step"),
        ({"ema_decay": 1.0}, "ema_decay"),
        ({"autocast_dtype": torch.float64}, "autocast_dtype"),
        ({"parameterization": "score"}, "score"),
    ],
)
def test_bad_training_arguments_are_named(lorenz, kwargs, match):
    with pytest.raises(ValueError, match=match):
        train_denoiser(
            small_denoiser(),
            lorenz[0],
            schedule=cosine_schedule(),
            **{"max_iter": 10, **kwargs},
        )


def test_learning_rate_warmup_and_cosine_decay():
    kwargs = {"learning_rate": 1.0, "max_iter": 110, "warmup_iter": 10}
    assert learning_rate_at(0, lr_schedule="constant", **kwargs) == pytest.approx(0.1)
    assert learning_rate_at(50, lr_schedule="constant", **kwargs) == 1.0
    assert learning_rate_at(10, lr_schedule="cosine", **kwargs) == pytest.approx(1.0)
    assert learning_rate_at(60, lr_schedule="cosine", **kwargs) == pytest.approx(0.5)
    assert learning_rate_at(109, lr_schedule="cosine", **kwargs) < 1e-3


# --- samplers -------------------------------------------------------------


class GaussianOracle(nn.Module):
    """The exact denoiser for data ~ N(0, c^2): x_hat = sqrt(ab) c^2 / V z."""

    def __init__(self, schedule, parameterization, c):
        super().__init__()
        self.schedule, self.parameterization, self.c = schedule, parameterization, c

    def forward(self, z, t):
        ab = float(self.schedule.alpha_bar[int(t)])
        x_hat = ab**0.5 * self.c**2 / (ab * self.c**2 + 1 - ab) * z
        eps_hat = (z - ab**0.5 * x_hat) / (1 - ab) ** 0.5
        return loss_target(self.parameterization, x_hat, eps_hat, ab)


@pytest.mark.parametrize("name", PARAMETERIZATIONS)
@pytest.mark.parametrize("method", ["ddpm", "ddim"])
def test_samplers_with_the_exact_denoiser_recover_the_data_spread(name, method):
    schedule, c = cosine_schedule(), 0.5
    oracle = GaussianOracle(schedule, name, c)
    generator = torch.Generator().manual_seed(0)
    z = torch.randn(5000, 2, generator=generator, dtype=torch.float64)
    if method == "ddpm":
        # DDPM's posterior ignores the uncertainty of x_hat, so coarse grids
        # shrink the spread (to 0.47 on 50 steps); on all 1000 it is 0.498.
        grid = timestep_grid(1000, 1000)
        x = sample_ddpm(oracle, z, schedule, grid, name, generator=generator)
    else:
        x = sample_ddim(oracle, z, schedule, timestep_grid(1000, 50), name)
    assert x.std().item() == pytest.approx(c, rel=0.03)
    assert abs(x.mean().item()) < 0.02


def test_ddim_is_deterministic_and_ddpm_follows_its_generator(trained):
    model, _ = trained
    schedule, grid = cosine_schedule(), timestep_grid(1000, 10)
    z = torch.randn(64, 3, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(
        sample_ddim(model, z, schedule, grid),
        sample_ddim(model, z, schedule, grid),
        rtol=0,
        atol=0,
    )

    def ddpm(seed):
        return sample_ddpm(
            model, z, schedule, grid, generator=torch.Generator().manual_seed(seed)
        )

    assert torch.equal(ddpm(1), ddpm(1))
    assert not torch.equal(ddpm(1), ddpm(2))


def test_partial_diffusion_spread_grows_with_tau(trained):
    model, _ = trained
    schedule = cosine_schedule()
    x = torch.tensor([[0.5, 0.5, 0.5]]).repeat(200, 1)
    spreads = []
    for tau in (10, 100, 400):
        members = partial_diffusion(
            model,
            x,
            tau,
            schedule,
            n_steps=10,
            generator=torch.Generator().manual_seed(0),
        )
        spreads.append(members.std(0).mean().item())
    assert spreads[0] < spreads[1] < spreads[2]
    assert torch.equal(partial_diffusion(model, x, 0, schedule, 10), x)
    with pytest.raises(ValueError, match="tau"):
        partial_diffusion(model, x, 1001, schedule, 10)
    with pytest.raises(ValueError, match="euler"):
        partial_diffusion(model, x, 10, schedule, 10, method="euler")


def test_timestep_grid():
    grid = timestep_grid(1000, 100)
    assert grid.shape == (100,)
    assert grid[0] == 1000 and grid[-1] == 10
    assert torch.all(grid[1:] < grid[:-1])
    assert torch.equal(timestep_grid(5, 100), torch.tensor([5, 4, 3, 2, 1]))


def test_bad_grids_are_refused():
    model, schedule = small_denoiser(), cosine_schedule()
    z = torch.zeros(2, 3)
    with pytest.raises(ValueError, match="decreasing"):
        sample_ddim(model, z, schedule, [10, 20])
    with pytest.raises(ValueError, match="1..1000"):
        sample_ddim(model, z, schedule, [2000, 10])


def test_history_is_a_plain_dataclass():
    history = TrainingHistory()
    assert history.loss_curve == [] and history.optimizer_state is None
