"""The denoiser of Finn et al. (2024): a residual MLP conditioned on the step by FiLM.

    x -> Linear -> n_blocks x [LayerNorm -> FiLM(t) -> Linear -> activation
         -> Linear -> * gamma, + input] -> Linear -> prediction

The paper's activation is ReLU; GELU and SiLU are smooth alternatives (see
`ACTIVATIONS`).

FiLM depends on the step t only, and t is an integer in 0..T, so the FiLM
gain ``1 + scale`` and shift of every step can be tabulated once and gathered
by t (training), or computed once per fixed time (features, sampling).
"""

import math
from numbers import Integral, Real

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "ACTIVATIONS",
    "ARCHITECTURES",
    "ConvDenoiser",
    "ConvResidualBlock",
    "Denoiser",
    "ResidualBlock",
    "build_denoiser",
    "timestep_embedding",
]

# Name -> elementwise function of the blocks' hidden layer. ReLU is the
# paper's. GELU (tanh approximation) and SiLU (x * sigmoid(x)) are smooth: a
# ridge head on the features of a ReLU network fits a piecewise-linear
# function of the state, whose error on the Lorenz 63 increment levels off
# near 1e-3, while smooth features keep improving (docs: the featurizer's
# training recipe).
def _relu(x):
    return F.relu(x, inplace=True)


def _gelu(x):
    return F.gelu(x, approximate="tanh")


ACTIVATIONS = {"relu": _relu, "gelu": _gelu, "silu": F.silu}


def _check_activation(activation):
    if activation not in ACTIVATIONS:
        raise ValueError(
            f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}."
        )


def _check_int(name, value, low):
    """Raise a ValueError unless `value` is an integer >= `low` (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, Integral) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}.")


def timestep_embedding(t, dim=512, max_period=10000.0):
    """Sinusoidal embedding ``[sin(t f), cos(t f)]`` of integer steps t.

    The ``dim // 2`` frequencies ``f_i = max_period ** (-i / (dim // 2 - 1))``
    run from 1 down to ``1 / max_period``.

    Parameters
    ----------
    t : torch.Tensor of shape (n,)
        Steps (integers or floats).
    dim : int, default=512
        Embedding size, even and at least 4.
    max_period : float, default=10000.0
        Longest period of the sinusoids.

    Returns
    -------
    torch.Tensor of shape (n, dim), float32
    """
    half = dim // 2
    exponents = torch.arange(half, dtype=torch.float64, device=t.device) / (half - 1)
    frequencies = torch.exp(-math.log(max_period) * exponents)
    angles = t.to(torch.float64)[:, None] * frequencies
    return torch.cat([angles.sin(), angles.cos()], dim=1).float()


class ResidualBlock(nn.Module):
    """LayerNorm -> FiLM -> Linear -> activation -> Linear, times gamma, plus input."""

    def __init__(self, n_hidden, time_embedding_dim, activation="relu"):
        super().__init__()
        _check_activation(activation)
        self.n_hidden = n_hidden
        # a name, not the function: the module stays picklable
        self.activation = activation
        self.film = nn.Linear(time_embedding_dim, 2 * n_hidden)
        self.fc1 = nn.Linear(n_hidden, n_hidden)
        self.fc2 = nn.Linear(n_hidden, n_hidden)
        # layer scale: each block starts as (almost) the identity
        self.gamma = nn.Parameter(torch.full((n_hidden,), 1e-6))
        offset = torch.cat([torch.ones(n_hidden), torch.zeros(n_hidden)])
        self.register_buffer("film_offset", offset, persistent=False)

    def film_constants(self, embedding):
        """``[1 + scale, shift]`` of shape (n, 2 * n_hidden) for time embeddings."""
        return self.film(embedding) + self.film_offset

    def forward(self, h, gain, shift, normed=None):
        """Apply the block to h given its FiLM gain ``1 + scale`` and shift.

        `gain` and `shift` have one row per sample or a single row for all;
        `normed` may pass ``layer_norm(h)`` when it is already known.
        """
        if normed is None:
            normed = F.layer_norm(h, (self.n_hidden,))
        y = torch.addcmul(shift, normed, gain)
        y = self.fc2(ACTIVATIONS[self.activation](self.fc1(y)))
        return torch.addcmul(h, y, self.gamma)


class Denoiser(nn.Module):
    """Residual MLP denoiser with FiLM conditioning on the integer diffusion step.

    Parameters
    ----------
    n_features : int
        Size of the state (3 for Lorenz 63).
    n_hidden : int, default=256
        Width of the residual blocks; also the number of features per time.
    n_blocks : int, default=3
        Number of residual blocks.
    time_embedding_dim : int, default=512
        Size of the sinusoidal step embedding (even).
    max_period : float, default=10000
        Longest period of the step embedding.
    n_steps : int, default=1000
        Number of diffusion steps T; steps 0..T are tabulated for training.
        Other steps still work, they are only not tabulated.
    activation : {"relu", "gelu", "silu"}, default="relu"
        Activation between the two linear layers of each block: ReLU (the
        paper's), GELU (tanh approximation) or SiLU.
    """

    def __init__(
        self,
        n_features,
        n_hidden=256,
        n_blocks=3,
        time_embedding_dim=512,
        max_period=10000,
        n_steps=1000,
        activation="relu",
    ):
        super().__init__()
        _check_activation(activation)
        for name, value, low in [
            ("n_features", n_features, 1), ("n_hidden", n_hidden, 1),
            ("n_blocks", n_blocks, 0), ("n_steps", n_steps, 0),
            ("time_embedding_dim", time_embedding_dim, 4),
        ]:
            _check_int(name, value, low)
        if not (isinstance(max_period, Real) and 1 < max_period < math.inf):
            raise ValueError(
                f"max_period must be a finite number > 1, got {max_period!r}."
            )
        if time_embedding_dim % 2:
            raise ValueError(
                "time_embedding_dim must be an even integer >= 4, got "
                f"{time_embedding_dim!r}."
            )
        self.n_features = n_features
        self.n_hidden = n_hidden
        self.n_blocks = n_blocks
        self.time_embedding_dim = time_embedding_dim
        self.max_period = max_period
        self.n_steps = n_steps
        self.activation = activation
        self.in_proj = nn.Linear(n_features, n_hidden)
        self.blocks = nn.ModuleList(
            ResidualBlock(n_hidden, time_embedding_dim, activation)
            for _ in range(n_blocks)
        )
        self.out_proj = nn.Linear(n_hidden, n_features)
        # a constant: kept out of the state dict, rebuilt with the module
        table = timestep_embedding(
            torch.arange(n_steps + 1), time_embedding_dim, max_period
        )
        self.register_buffer("embedding_table", table, persistent=False)

    def film(self, t):
        """FiLM constants of every block at the integer steps t.

        Parameters
        ----------
        t : torch.Tensor of shape (n,)
            Steps.

        Returns
        -------
        torch.Tensor of shape (n, n_blocks * 2 * n_hidden)
            For each block in turn, ``1 + scale`` then ``shift``.
        """
        t = torch.as_tensor(t, device=self.embedding_table.device).reshape(-1)
        embedding = timestep_embedding(t, self.time_embedding_dim, self.max_period)
        return self._film(embedding)

    def film_table(self):
        """FiLM constants for every step 0..n_steps, as `film` (row t is step t)."""
        return self._film(self.embedding_table)

    def _film(self, embedding):
        if not self.blocks:
            return embedding.new_zeros(embedding.shape[0], 0)
        return torch.cat([b.film_constants(embedding) for b in self.blocks], dim=1)

    def _block_films(self, t):
        """Per block, (gain, shift) for steps t: a row per step, or one row."""
        if t.ndim == 0:
            embedding = timestep_embedding(
                t.reshape(1), self.time_embedding_dim, self.max_period
            )
            return [b.film_constants(embedding).chunk(2, -1) for b in self.blocks]
        if t.shape[0] > self.embedding_table.shape[0]:
            # fewer distinct steps than samples: FiLM once per step, gather by t
            embedding, rows = self.embedding_table, t
        else:
            # FiLM once per distinct step present, then gathered
            steps, rows = torch.unique(t, return_inverse=True)
            embedding = timestep_embedding(
                steps, self.time_embedding_dim, self.max_period
            )
        # gain and shift gathered apart: contiguous, half-size gathers; slicing
        # a gathered (batch, 2 * n_hidden) tensor would cost full copies in
        # the backward pass
        return [
            tuple(
                part.contiguous().index_select(0, rows)
                for part in b.film_constants(embedding).chunk(2, -1)
            )
            for b in self.blocks
        ]

    def _trunk(self, z, block_films):
        h = self.in_proj(z)
        for block, (gain, shift) in zip(self.blocks, block_films, strict=True):
            h = block(h, gain, shift)
        return h

    def trunk(self, z, film):
        """Output of the last block for inputs z and FiLM constants `film`.

        `film` is as returned by `film`, one row per sample or a single row
        broadcast over the batch.
        """
        block_films = [
            part.chunk(2, -1) for part in film.split(2 * self.n_hidden, dim=-1)
        ]
        return self._trunk(z, block_films)

    def forward(self, z, t):
        """Predict (velocity, noise or state) for noised states z at steps t.

        Parameters
        ----------
        z : torch.Tensor of shape (batch, n_features)
        t : int or torch.Tensor of shape () or (batch,)
            Integer steps; a single step is shared by the whole batch.

        Returns
        -------
        torch.Tensor of shape (batch, n_features)
        """
        return self.out_proj(self.hidden(z, t))

    def hidden(self, z, t):
        """Output of the last block for inputs z at steps t (as in `forward`)."""
        t = torch.as_tensor(t, device=z.device)
        return self._trunk(z, self._block_films(t))

    def _check_blocks(self, blocks):
        """`blocks` as a tuple of block numbers; None is the last block."""
        if blocks is None:
            return (self.n_blocks,)
        blocks = tuple(blocks)
        valid = [
            not isinstance(b, bool) and isinstance(b, Integral)
            and 0 <= b <= self.n_blocks for b in blocks
        ]
        if not blocks or not all(valid) or len(set(blocks)) < len(blocks):
            raise ValueError(
                f"blocks must be distinct block numbers in 0..{self.n_blocks} "
                f"(0: the input projection), got {blocks!r}."
            )
        return blocks

    def _block_outputs(self, h0, normed0, time_film, blocks):
        """Outputs of the `blocks` (0: `h0`) at one time's FiLM constants."""
        outputs = {0: h0}
        h = h0
        parts = time_film.split(2 * self.n_hidden)
        for k, (block, part) in enumerate(zip(self.blocks, parts, strict=True)):
            gain, shift = part.reshape(1, -1).chunk(2, -1)
            h = block(h, gain, shift, normed=normed0 if k == 0 else None)
            outputs[k + 1] = h
        return [outputs[b] for b in blocks]

    @torch.no_grad()
    def features(self, x, times, blocks=None):
        """Output of the last block (or of `blocks`) at each fixed time, concatenated.

        The clean state x is fed as the noised state at every time, as in
        Finn et al. (2024); FiLM is computed once per time, not per sample.

        Parameters
        ----------
        x : torch.Tensor of shape (batch, n_features)
        times : sequence of int
            Steps at which to evaluate the network.
        blocks : sequence of int or None, default=None
            Which outputs to read at each time: block numbers ``1..n_blocks``
            (0 is the input projection); None is the last block.

        Returns
        -------
        torch.Tensor of shape (batch, n_hidden * len(blocks) * len(times))
            Column ``(i * len(blocks) + k) * n_hidden + j`` is unit j of
            ``blocks[k]`` at ``times[i]``.
        """
        blocks = self._check_blocks(blocks)
        film = self.film(torch.as_tensor(times).reshape(-1))
        h0 = self.in_proj(x)
        normed0 = F.layer_norm(h0, (self.n_hidden,))
        width = self.n_hidden * len(blocks)
        out = h0.new_empty(x.shape[0], width * film.shape[0])
        for i, time_film in enumerate(film):
            outputs = self._block_outputs(h0, normed0, time_film, blocks)
            out[:, i * width : (i + 1) * width] = torch.cat(outputs, dim=1)
        return out


def _circular_conv(n_in, n_out, kernel_size):
    """A Conv1d over sites on a ring: circular padding keeps the ring's size."""
    return nn.Conv1d(
        n_in, n_out, kernel_size, padding=kernel_size // 2, padding_mode="circular"
    )


class ConvResidualBlock(nn.Module):
    """`ResidualBlock` with circular convolutions over sites instead of Linear.

    The hidden state is ``(batch, n_hidden, n_sites)``: layer norm over the
    channels of each site, FiLM from the step shared by every site, then
    conv -> activation -> conv, times gamma, plus the input.
    """

    def __init__(self, n_hidden, time_embedding_dim, activation="relu", kernel_size=3):
        super().__init__()
        _check_activation(activation)
        self.n_hidden, self.activation = n_hidden, activation
        self.film = nn.Linear(time_embedding_dim, 2 * n_hidden)
        self.fc1 = _circular_conv(n_hidden, n_hidden, kernel_size)
        self.fc2 = _circular_conv(n_hidden, n_hidden, kernel_size)
        self.gamma = nn.Parameter(torch.full((n_hidden, 1), 1e-6))
        offset = torch.cat([torch.ones(n_hidden), torch.zeros(n_hidden)])
        self.register_buffer("film_offset", offset, persistent=False)

    film_constants = ResidualBlock.film_constants

    def forward(self, h, gain, shift, normed=None):
        """As `ResidualBlock.forward`; gain and shift are (batch or 1, n_hidden)."""
        if normed is None:
            normed = _channel_norm(h)
        y = torch.addcmul(shift.unsqueeze(-1), normed, gain.unsqueeze(-1))
        y = self.fc2(ACTIVATIONS[self.activation](self.fc1(y)))
        return torch.addcmul(h, y, self.gamma)


def _channel_norm(h, eps=1e-5):
    """Layer norm (no affine) over the channels of each site of (B, C, S)."""
    return F.layer_norm(h.transpose(1, 2), (h.shape[1],), eps=eps).transpose(1, 2)


class ConvDenoiser(Denoiser):
    """Translation-equivariant denoiser of states on a periodic 1-D grid.

    The paper's denoiser with its Linear layers made circular convolutions
    over the sites of a ring (Lorenz 96, a field on a periodic grid): the
    input and every block see ``kernel_size`` neighbouring sites, the output
    is a pointwise projection. Its weights do not depend on the number of
    sites, its cost is linear in it, and a network trained on one ring size
    runs on any other.

    Parameters
    ----------
    n_hidden : int, default=64
        Channels per site; also the number of features per site and time.
    n_blocks, time_embedding_dim, max_period, n_steps, activation
        As in `Denoiser`.
    kernel_size : int, default=5
        Width of every convolution (odd). The receptive field of a site's
        features is ``(kernel_size - 1) / 2 * (1 + 2 * n_blocks)`` sites to
        each side.
    """

    def __init__(
        self,
        n_hidden=64,
        n_blocks=3,
        time_embedding_dim=512,
        max_period=10000,
        n_steps=1000,
        activation="relu",
        kernel_size=5,
    ):
        _check_int("kernel_size", kernel_size, 1)
        _check_int("n_blocks", n_blocks, 0)
        if kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd and >= 1, got {kernel_size!r}.")
        super().__init__(
            1, n_hidden, 0, time_embedding_dim, max_period, n_steps, activation
        )
        self.n_blocks, self.kernel_size = n_blocks, kernel_size
        self.in_proj = _circular_conv(1, n_hidden, kernel_size)
        self.blocks = nn.ModuleList(
            ConvResidualBlock(n_hidden, time_embedding_dim, activation, kernel_size)
            for _ in range(n_blocks)
        )
        self.out_proj = nn.Conv1d(n_hidden, 1, 1)

    def _trunk(self, z, block_films):
        return super()._trunk(z.unsqueeze(1), block_films)

    def forward(self, z, t):
        """Predict for noised states z of shape (batch, n_sites) at steps t."""
        return super().forward(z, t).squeeze(1)

    @torch.no_grad()
    def features(self, x, times, blocks=None):
        """Per-site output of the last block (or of `blocks`) at each fixed time.

        Returns
        -------
        torch.Tensor of shape (batch, n_sites * len(times) * len(blocks) * n_hidden)
            Site-major: column ``((s * len(times) + i) * len(blocks) + k) *
            n_hidden + j`` is channel j of site s, of ``blocks[k]`` at
            ``times[i]``.
        """
        blocks = self._check_blocks(blocks)
        film = self.film(torch.as_tensor(times).reshape(-1))
        h0 = self.in_proj(x.unsqueeze(1))
        normed0 = _channel_norm(h0)
        out = h0.new_empty(x.shape[0], x.shape[1], film.shape[0], len(blocks),
                           self.n_hidden)
        for i, time_film in enumerate(film):
            outputs = self._block_outputs(h0, normed0, time_film, blocks)
            for k, h in enumerate(outputs):
                out[:, :, i, k] = h.transpose(1, 2)
        return out.reshape(x.shape[0], -1)


ARCHITECTURES = ("dense", "conv")


def build_denoiser(
    architecture,
    n_features,
    *,
    n_hidden,
    n_blocks,
    time_embedding_dim,
    n_steps,
    activation,
    kernel_size=5,
):
    """A `Denoiser` ("dense", any state) or a `ConvDenoiser` ("conv", a ring).

    `n_features` sizes the dense network; a convolutional one takes rings of
    any size, and `kernel_size` is its convolutions' width.
    """
    if architecture == "conv":
        return ConvDenoiser(
            n_hidden, n_blocks, time_embedding_dim, n_steps=n_steps,
            activation=activation, kernel_size=kernel_size,
        )
    if architecture != "dense":
        raise ValueError(
            f"architecture must be one of {list(ARCHITECTURES)}, got {architecture!r}."
        )
    return Denoiser(
        n_features, n_hidden, n_blocks, time_embedding_dim, n_steps=n_steps,
        activation=activation,
    )
