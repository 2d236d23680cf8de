"""Feature maps of states: learned diffusion features and random Fourier features."""

import math
import warnings
from numbers import Integral, Real

import numpy as np
import torch
from scipy.spatial.distance import pdist
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
)
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import _check_feature_names_in, check_is_fitted

from . import diffusion
from ._base import check_unchanged, fit_context, row_chunks
from ._out_of_core import is_dask_array, lazy_transform
from ._torch_utils import (
    DEVICE_CONSTRAINT,
    continued_history,
    from_numpy_state,
    mean_and_scale,
    reproducible_state,
    resolve_device,
    seeded_module,
    split_rows,
    standardized_tensor,
    to_numpy_state,
    torch_generator,
    training_generator,
    warn_training_end,
)
from ._validation import (
    check_array,
    check_finite,
    check_memory,
    validate_data,
    validate_params,
)
from .diffusion import T_SAMPLINGS
from .engine import LR_SCHEDULES


class RFFFeaturizer(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Random Fourier features of the paper's baseline surrogate.

    Maps a state ``x`` to ``sqrt(2 / n) [sin(2 pi x W / wavelength),
    cos(2 pi x W / wavelength)]`` with ``W ~ N(0, 1)`` of shape
    ``(n_features, n_components / 2)``.

    Parameters
    ----------
    n_components : int, default=1536
        Number of output features ``n``: the sines of ``n // 2`` frequencies,
        then their cosines. When ``n`` is odd, one more frequency contributes
        a single cosine with a random phase ``b``,
        ``sqrt(2 / n) cos(2 pi x w / wavelength + b)`` (the feature of
        :class:`~sklearn.kernel_approximation.RBFSampler`), so that the
        kernel estimate stays unbiased for every ``n >= 1``.
    wavelength : float or "median", default=1.0
        Length scale of the features, in the units of ``X``. "median" takes
        the median distance between training states (of at most 1000 rows,
        evenly spaced), which makes the features independent of the units
        of ``X``. ``fit`` warns when the median distance exceeds 5 times a
        given wavelength: the features of neighbouring states are then
        nearly unrelated (see Notes).
    random_state : int, RandomState instance or None, default=None
        Seeds the draw of ``W``.

    Attributes
    ----------
    wavelength_ : float
        The wavelength used: ``wavelength``, or the median distance (1.0
        when all training states coincide).
    random_weights_ : ndarray of shape (`n_features_in_`, (n_components + 1) // 2)
        The frequencies ``2 pi W / wavelength_``, in float64.
    random_offset_ : float
        The random phase ``b`` of the unpaired cosine when ``n_components`` is
        odd, else 0.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during fit, when ``X`` has string column names.

    See Also
    --------
    sklearn.kernel_approximation.RBFSampler : Random Fourier features with a
        random phase instead of the sin/cos pair.

    Notes
    -----
    Both this class and :class:`~sklearn.kernel_approximation.RBFSampler`
    approximate the Gaussian kernel
    ``k(x, y) = exp(-gamma ||x - y||^2)`` with
    ``gamma = 2 pi^2 / wavelength^2``: ``RFFFeaturizer(wavelength=w)`` and
    ``RBFSampler(gamma=2 * np.pi**2 / w**2)`` have the same expected inner
    products. The sin/cos pair has lower variance than a random phase for
    the same number of features (Sutherland & Schneider, 2015). Either way
    the error of the inner products decreases as ``1 / sqrt(n_components)``.

    ``transform`` works on chunks of rows whose phases fit in cache and writes
    each chunk's sines and cosines straight into the output, so the output
    is written once (``RBFSampler`` passes over it four times). float32
    states use numpy's float32 sin/cos (SIMD kernels, far faster
    than the float64 ones); float64 states use torch's float64 sin/cos,
    which are as accurate as numpy's (within one ulp) and about 5x faster.
    On a shared, loaded 2-core machine, ``benchmarks/bench_rff.py`` measured
    ``transform`` (1536 features of 3-D states) 3-5x as fast as
    ``RBFSampler`` in float64 and 1.5-2.3x in float32 (median CPU time; one
    float32 run in nine at parity).

    In float64 the sin/cos run on torch's thread pool,
    ``torch.get_num_threads()`` threads (by default one per core); the
    phases ``X @ W`` come from numpy's BLAS. On a machine shared with other
    jobs, extra threads can cost more CPU time than they save (one thread
    was the faster in most of the runs above): limit both with
    ``threadpoolctl.threadpool_limits(1)`` (a context manager), or torch's
    alone with ``torch.set_num_threads``.

    Finn et al. (2024) use ``n_components=1536`` (and 256) with wavelength 1
    on normalised Lorenz 63 states, followed by ridge regression.

    The wavelength is in the units of ``X``: on unscaled states it is easily
    far too short. One-step nRMSE of a surrogate of the increment (1536
    features, :class:`~skdiffusion.StreamingRidgeCV` head; 7,600 training
    pairs): on raw Rossler states (median distance 9.4) wavelength 1 gave
    0.36, ``"median"`` 2.1e-3, a ``StandardScaler`` before wavelength 1
    1.9e-2; on normalised Lorenz 63 states (median distance 2.1)
    wavelength 1 gave 8.8e-5 and ``"median"`` 1.3e-5. Tuning the
    wavelength in a search does better still (Rossler, standardised,
    wavelength 4: 4e-5).

    Examples
    --------
    >>> import numpy as np
    >>> from skdiffusion import RFFFeaturizer
    >>> X = np.random.default_rng(0).normal(size=(5, 3))
    >>> RFFFeaturizer(n_components=8, random_state=0).fit_transform(X).shape
    (5, 8)
    """

    _parameter_constraints: dict = {
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "wavelength": [
            Interval(Real, 0, None, closed="neither"), StrOptions({"median"})
        ],
        "random_state": ["random_state"],
    }

    def __init__(self, n_components=1536, *, wavelength=1.0, random_state=None):
        self.n_components = n_components
        self.wavelength = wavelength
        self.random_state = random_state

    @fit_context()
    def fit(self, X, y=None):
        """Draw the random frequencies for the number of features of ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training states: their number of columns, and their spread for
            ``wavelength="median"`` and the wavelength's check.
        y : None
            Ignored.

        Returns
        -------
        self : RFFFeaturizer
            The fitted featurizer.
        """
        X = validate_data(self, X, dtype=[np.float64, np.float32])
        self.wavelength_ = self._check_wavelength(_median_distance(X))
        rng = check_random_state(self.random_state)
        n_frequencies = (self.n_components + 1) // 2
        weights = rng.standard_normal(size=(X.shape[1], n_frequencies))
        self.random_weights_ = weights * (2 * np.pi / self.wavelength_)
        odd = self.n_components % 2
        self.random_offset_ = float(rng.uniform(0, 2 * np.pi)) if odd else 0.0
        self._n_features_out = self.n_components
        return self

    def _check_wavelength(self, median):
        """The wavelength to use; warns when a given one is far too short."""
        if self.wavelength == "median":
            return median if median > 0 else 1.0
        # 5: normalised Lorenz 63 (ratio 2.1) works, raw Rossler (9.4) fails
        if median > 5 * self.wavelength:
            warnings.warn(
                f"The median distance between training states ({median:.3g}) "
                f"is {median / self.wavelength:.1f} times wavelength="
                f"{self.wavelength:g}: the random Fourier features of nearby "
                "states will be nearly unrelated. Standardise X, or pass "
                "wavelength='median' (or a larger wavelength).",
                UserWarning,
                stacklevel=6,
            )
        return float(self.wavelength)

    def transform(self, X):
        """Return the random Fourier features of ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            States.

        Returns
        -------
        features : ndarray of shape (n_samples, n_components)
            Sines then cosines, in the dtype of ``X`` (float32 or float64).
        """
        check_is_fitted(self)
        if is_dask_array(X):  # lazily, block by block
            dtype = X.dtype if X.dtype == np.float32 else np.float64
            return lazy_transform(self.transform, X, self.n_components, dtype)
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        weights = self.random_weights_.astype(X.dtype)
        out = np.empty((X.shape[0], self.n_components), dtype=X.dtype)
        rows = max(1, self._CHUNK_SIZE // self.n_components)
        for batch in row_chunks(X.shape[0], rows):
            self._fill(X[batch], weights, out[batch])
        # Phases beyond the dtype's range give sin(inf) = NaN: tested on the
        # output only when a bound on |X @ W| says they might (cheap otherwise).
        largest = np.maximum(X.max(axis=0, initial=0), -X.min(axis=0, initial=0))
        reach = largest.astype(np.float64) @ np.abs(self.random_weights_)
        if not np.all(reach < np.finfo(X.dtype).max / 2):
            check_finite(out, "RFFFeaturizer.transform(X)", (
                f"X has values up to {largest.max():.3g}, whose phases "
                f"X @ W overflow {X.dtype}; standardise X first"
            ))
        return out

    # Output elements per chunk of transform: a chunk's phases (256 kB in
    # float32) stay in cache between the matmul and the sin/cos. Measured
    # against 2**16 and 2**19: as fast or faster (float64: 2**18, 2**19 the
    # same within noise, 2**20 and up slower).
    _CHUNK_SIZE = 2**17

    def _fill(self, X, weights, out):
        """Write the features of the rows ``X`` into ``out``."""
        half = self.n_components // 2
        phase = X @ weights
        if self.n_components % 2:
            phase[:, -1] += self.random_offset_
        _sin(phase[:, :half], out=out[:, :half])
        _cos(phase, out=out[:, half:])
        out *= math.sqrt(2 / self.n_components)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags


# Measured here: numpy's float32 sin/cos (SIMD) are over twice as fast as
# torch's, but its float64 ones are about 5x slower than torch's vectorised
# float64 kernels (SLEEF), which are as accurate (within 1 ulp of numpy's).
# torch writes straight into the numpy output through from_numpy views.
def _sin(x, out):
    if x.dtype == np.float64:
        torch.sin(torch.from_numpy(x), out=torch.from_numpy(out))
    else:
        np.sin(x, out=out)


def _cos(x, out):
    if x.dtype == np.float64:
        torch.cos(torch.from_numpy(x), out=torch.from_numpy(out))
    else:
        np.cos(x, out=out)


# Rows per chunk of transform: small enough that a chunk's activations stay in
# cache, large enough that each matmul runs near the machine's peak.
_TRANSFORM_CHUNK = 2048
# Rows denoised at once by sample and sample_ensemble (bounds their memory).
_SAMPLE_CHUNK = 65536
# score draws its steps and noise from this seed, so that it is deterministic
# and every featurizer is scored on the same noised states.
_SCORE_SEED = 0


# architecture -> the values of the parameters left at None: the paper's for
# "dense"; for "conv", the recipe that did best on Lorenz 96
# (benchmarks/spatial_recipe.py, docs: spatially extended systems): narrow
# blocks, noise prediction, late pseudo-times and every block's output.
_DEFAULTS = {
    "dense": {"n_hidden": 256, "feature_times": (0, 50, 100, 200, 400, 600),
              "feature_blocks": "last", "parameterization": "velocity"},
    "conv": {"n_hidden": 32, "feature_times": (0, 100, 400, 700, 900),
             "feature_blocks": "all", "parameterization": "noise"},
}
# What None meant for "conv" before the recipe became its default: fitted
# featurizers pickled then keep their network and features.
_OLD_CONV_DEFAULTS = {"n_hidden": 64, "feature_times": (0, 100, 400),
                      "feature_blocks": "last"}
# Marks fitted featurizers whose None values mean _DEFAULTS.
_DEFAULTS_VERSION = 2

# The arguments that sample and sample_ensemble share.
_SAMPLING = {
    "n_steps": [Interval(Integral, 1, None, closed="left")],
    "method": [StrOptions(set(diffusion.SAMPLERS))],
    "random_state": ["random_state"],
}

# Parameters that shape the fitted network (or how its output is read):
# changing one after fit needs a refit, and using the network says so.
_NETWORK_CONSTRAINTS = {
    "architecture": [StrOptions(set(diffusion.ARCHITECTURES))],
    "kernel_size": [Interval(Integral, 1, None, closed="left")],
    "n_hidden": [None, Interval(Integral, 1, None, closed="left")],
    "n_blocks": [Interval(Integral, 1, None, closed="left")],
    "time_embedding_dim": [Interval(Integral, 4, None, closed="left")],
    "activation": [StrOptions(set(diffusion.ACTIVATIONS))],
    "schedule": [StrOptions(set(diffusion.SCHEDULES))],
    "n_diffusion_steps": [Interval(Integral, 1, None, closed="left")],
    "parameterization": [None, StrOptions(set(diffusion.PARAMETERIZATIONS))],
}


class DiffusionFeaturizer(TransformerMixin, BaseEstimator):
    """Features of states from a trained denoising diffusion model.

    ``fit`` standardises the states and trains the residual denoiser of Finn
    et al. (2024) to predict the velocity (or noise, or state) of noised
    states. ``transform`` feeds the standardised states to the trained network
    at each of a few fixed diffusion pseudo-times and returns the output of
    its last residual block at each time, concatenated. The trained model also
    generates new states (:meth:`sample`) and ensembles of states near given
    ones by partial diffusion (:meth:`sample_ensemble`).

    Parameters
    ----------
    feature_times : array-like of int or None, default=None
        Pseudo-times (diffusion steps in ``0..n_diffusion_steps``) at which
        the features are taken; distinct. None means the paper's
        ``(0, 50, 100, 200, 400, 600)`` for ``architecture="dense"`` and
        ``(0, 100, 400, 700, 900)`` for "conv". Training does not use them, so
        they may be changed with ``set_params`` after fitting: the next
        ``transform`` uses the new times, without refitting.
    feature_blocks : {"last", "all"}, array-like of int or None, default=None
        Which residual blocks' outputs are the features at each time: "last"
        is the last block (the paper's), "all" every block, or block
        numbers ``1..n_blocks`` (0 is the input projection). None means
        "last" for ``architecture="dense"`` and "all" for "conv": on Lorenz
        96 the inner blocks carry what the last one lost (user guide:
        spatially extended systems). Like ``feature_times``, it may be
        changed after fitting.
    architecture : {"dense", "conv"}, default="dense"
        The paper's residual MLP over the whole state ("dense"), or, for a
        field on a periodic 1-D grid (Lorenz 96), the same blocks with
        circular convolutions over the sites ("conv",
        :class:`~skdiffusion.diffusion.ConvDenoiser`): translation
        equivariant, weights independent of the number of sites, and
        per-site features. A "conv" featurizer standardises with one mean
        and scale for all sites and transforms rings of any size. Its
        defaults (``n_hidden``, ``kernel_size``, ``parameterization``,
        ``feature_times``, ``feature_blocks``) are the recipe that did best
        on Lorenz 96, where ``max_iter=300, batch_size=256,
        learning_rate=3e-3`` trained it best and a ridge on each site's
        and its neighbours' features
        (:class:`~skdiffusion.PeriodicPatches`) read them best (user
        guide: spatially extended systems).
    kernel_size : int, default=3
        Width (odd) of the convolutions of ``architecture="conv"``; a
        site's features see ``(kernel_size - 1) / 2 * (1 + 2 * n_blocks)``
        sites to each side. Unused by "dense".
    n_hidden : int or None, default=None
        Width of the network (channels per site for "conv"); also the number
        of features per time and block (and site). None means the paper's
        256 for "dense" and 32 for "conv".
    n_blocks : int, default=3
        Number of residual blocks.
    time_embedding_dim : int, default=512
        Size of the sinusoidal embedding of the step (even, >= 4).
    activation : {"silu", "gelu", "relu"}, default="silu"
        Activation inside the residual blocks. The paper's is ReLU, whose
        features are piecewise linear in the state: a ridge head on them
        levels off near a one-step nRMSE of 1e-3 on Lorenz 63 however long
        the training. SiLU (``x * sigmoid(x)``) and GELU (tanh
        approximation) give smooth features; with SiLU the same minutes of
        training reach about ten times lower (see the user guide's page on
        the training recipe).
    schedule : {"cosine", "linear"}, default="cosine"
        Noise schedule: cosine (s = 0.008, beta clipped at 0.9) or linear
        (beta from 1e-4 to 0.03).
    n_diffusion_steps : int, default=1000
        Number of diffusion steps T of the schedule.
    parameterization : {"velocity", "noise", "state"} or None, default=None
        What the network predicts from a noised state. None means the
        paper's "velocity" for ``architecture="dense"`` and "noise" for
        "conv" (on Lorenz 96 its features gave a ridge a lower one-step
        error: 0.059 against 0.075).
    max_iter : int, default=400
        Optimiser steps (mini-batches) per call to ``fit``, the budget unit
        of every torch estimator of the package (0 gives the untrained
        network).
        With the other defaults, about 30 CPU seconds on a CPU with
        AVX512-BF16 and 100 on one with AVX2 alone (bfloat16 products are
        emulated there; ``mixed_precision=False`` is no faster); longer
        training lowers the denoising loss (by under 1 % from 400 to 800
        steps) but, measured on Lorenz 63, gives a ridge head on the SiLU
        features a higher error (user guide: the training recipe).
    batch_size : int, default=2048
        States per optimiser step (capped at the number of training states).
    learning_rate : float, default=1e-3
        Peak learning rate of Adam.
    lr_schedule : {"cosine", "constant"}, default="cosine"
        After the warm-up, decay the learning rate to zero along a cosine by
        the end of each ``fit``, or keep it constant.
    warmup_iter : int, default=50
        Steps of linear learning-rate warm-up at the start of each ``fit``.
    t_sampling : {"uniform", "low"}, default="uniform"
        How training draws the pseudo-times: uniformly in
        ``1..n_diffusion_steps`` (the paper), or with probability
        proportional to ``1 / sqrt(t)``, which trains more near the clean
        states (see :func:`skdiffusion.diffusion.step_probabilities`).
    ema_decay : float, default=None
        If set, keep an exponential moving average of the weights with this
        decay (e.g. 0.999) and use the averaged weights in ``transform``,
        ``sample``, ``sample_ensemble`` and ``score``.
    validation_fraction : float, default=None
        If set, hold out this fraction of the states (at random), record
        the negative denoising loss on them in ``validation_scores_``, and
        keep the weights of the best evaluation.
    n_iter_no_change : int, default=None
        If set, stop when the validation score (or, without validation, the
        negative training loss) has not improved by more than ``tol`` for
        this many evaluations in a row; None never stops early.
    tol : float, default=1e-4
        Improvement that counts for ``n_iter_no_change``.
    eval_every : int, default=100
        Steps between evaluations: one point of ``loss_curve_`` (the mean
        training loss over the interval), one validation score, one progress
        line.
    mixed_precision : bool, default=True
        Train with bfloat16 matrix products (``torch.autocast``; weights,
        optimiser and loss stay float32) where they are fast: CUDA GPUs with
        bfloat16 and CPUs with AVX512-BF16 or AMX; elsewhere this has no
        effect. About 1.5-2x faster training; ``transform`` and sampling
        always run in float32.
    device : str or torch.device, default="auto"
        Where the network runs: "auto" picks CUDA when available, else the
        CPU. It may be changed with ``set_params`` after fitting or loading.
    dtype : {"float64", "float32"}, default="float64"
        Data type of what ``transform``, ``sample`` and ``sample_ensemble``
        return; the network computes in float32 either way. float64 suits
        any sklearn head: :class:`~sklearn.linear_model.Ridge` on float32
        features of this network took 67 CPU seconds against 3.5 on float64
        (20,000 states, 1536 features, two cores). float32 halves the memory
        of a large feature matrix, and the package's streaming ridges are
        fast on either.
    verbose : int, default=0
        Show the progress of training and sampling when positive: a bar in
        a terminal or notebook, lines otherwise, with elapsed time and time
        left.
    random_state : int, RandomState instance or None, default=None
        Seeds the initial weights, the batches, steps and noise of training,
        and the validation split. An int makes ``fit`` reproducible on a
        given machine.
    warm_start : bool, default=False
        If True and the featurizer is already fitted, ``fit`` continues
        training the current weights (and optimiser state) for another
        ``max_iter`` steps on the new ``X``, keeping the standardisation of
        the first fit; the network shape parameters must not change.

    Attributes
    ----------
    mean_ : ndarray of shape (`n_features_in_`,)
        Mean of the training states, subtracted before the network.
    scale_ : ndarray of shape (`n_features_in_`,)
        Standard deviation of the training states (1 where it is 0).
    network_params_ : dict
        The parameters that shaped the fitted network (``n_hidden``,
        ``n_blocks``, ``time_embedding_dim``, ``activation``, ``schedule``,
        ``n_diffusion_steps``, ``parameterization``). If one of them is
        changed after fit, ``transform``, sampling, scoring and a warm
        start raise a ``ValueError`` naming it, rather than use a network
        that does not match.
    network_state_ : dict of str to ndarray
        The raw weights of the network (CPU numpy arrays).
    ema_state_ : dict of str to ndarray or None
        The averaged weights when ``ema_decay`` is set, else None.
    loss_curve_ : list of float
        Mean training loss over each interval of ``eval_every`` steps,
        over all calls to ``fit`` with ``warm_start``.
    validation_scores_ : list of float or None
        Negative validation loss after each interval, when
        ``validation_fraction`` is set; else None.
    n_iter_ : int
        Optimiser steps taken in total (they accumulate with ``warm_start``).
    n_features_in_ : int
        Number of state variables seen during fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of the state variables, when ``X`` has string column names.

    See Also
    --------
    RFFFeaturizer : Random Fourier features, the untrained baseline of the
        paper.
    skdiffusion.engine.train : The training loop of every torch estimator.
    skdiffusion.diffusion.partial_diffusion : The ensemble generator.

    Notes
    -----
    The network is an input projection, ``n_blocks`` residual blocks
    (LayerNorm, FiLM from the step embedding, Linear, SiLU or GELU or the
    paper's ReLU, Linear, a layer-scale ``gamma`` initialised at 1e-6) and
    an output projection,
    trained with Adam on the mean squared error of the prediction at steps
    drawn uniformly in ``1..T``. The features of a state ``x`` at a time
    ``t`` are the output of the last block when the clean (standardised)
    ``x`` is fed as the noised state at step ``t``. Since FiLM depends only
    on ``t``, its scale and shift are computed once per time, not per
    sample. Column ``i * n_hidden + j`` is unit ``j`` at ``feature_times[i]``
    and is named ``"t{time}_h{j}"`` by :meth:`get_feature_names_out` (e.g.
    ``"t400_h17"``).

    ``transform``, ``sample`` and ``sample_ensemble`` return ``dtype``
    (float64 by default), whatever the dtype of ``X``; ``transform`` fills
    one preallocated array chunk by chunk, so its peak memory is little
    more than the output.

    The defaults train a paper-sized network (1536 features) with SiLU
    blocks briefly, with bfloat16 matrix products, a warm-up and a cosine
    decay of the learning rate: 400 steps of 2048 noised states whatever
    the size of ``X``: 31-32 CPU seconds on a two-core CPU with AVX512-BF16,
    99 on a two-core AVX2 CPU (user guide: the training recipe, with the
    commands). Finn et al. (2024) used ReLU and trained far longer;
    their setting is ``DiffusionFeaturizer(activation="relu", n_hidden=256,
    n_blocks=3, batch_size=16384, learning_rate=3e-4, lr_schedule="constant",
    warmup_iter=0, t_sampling="uniform", mixed_precision=False,
    max_iter=100 * len(X) // 16384)`` (100 epochs; ``ema_decay=0.999``
    existed but the features used the raw weights). Long runs can be split
    into several calls with ``warm_start=True``; interrupting ``fit``
    (KeyboardInterrupt) keeps the weights trained so far.

    If training diverges, ``fit`` raises
    :class:`~skdiffusion.engine.TrainingDivergedError` (a ``ValueError``;
    the loss is checked after the last step too) and, like any failed
    ``fit``, leaves the featurizer as it was before the call: unfitted if it
    was unfitted, with its previous fit (weights, optimiser state) otherwise.

    ``score`` is the negative denoising loss with steps and noise drawn from
    a fixed seed, so it is deterministic and comparable between featurizers
    on the same ``X``.

    References
    ----------
    Finn, T. S., Disson, L., Farchi, A., Bocquet, M., & Durand, C. (2024).
    Representation learning with unconditional denoising diffusion models
    for dynamical systems. Nonlinear Processes in Geophysics, 31, 409-431.

    Examples
    --------
    >>> from skdiffusion import DiffusionFeaturizer
    >>> from skdiffusion.datasets import make_lorenz63
    >>> X = make_lorenz63(2, 500, random_state=0).X
    >>> featurizer = DiffusionFeaturizer(n_hidden=16, max_iter=20, random_state=0)
    >>> featurizer.fit_transform(X).shape
    (980, 96)
    >>> featurizer.get_feature_names_out()[:2]
    array(['t0_h0', 't0_h1'], dtype=object)
    >>> featurizer.sample(5, n_steps=10, random_state=0).shape
    (5, 3)
    >>> featurizer.sample_ensemble(X[:2], tau=130, n_members=4).shape
    (2, 4, 3)
    """

    _parameter_constraints: dict = {
        "feature_times": [None, "array-like"],
        "feature_blocks": [None, StrOptions({"last", "all"}), "array-like"],
        **_NETWORK_CONSTRAINTS,
        "max_iter": [Interval(Integral, 0, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "lr_schedule": [StrOptions(set(LR_SCHEDULES))],
        "warmup_iter": [Interval(Integral, 0, None, closed="left")],
        "t_sampling": [StrOptions(set(T_SAMPLINGS))],
        "ema_decay": [None, Interval(Real, 0, 1, closed="left")],
        "validation_fraction": [None, Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [None, Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "eval_every": [Interval(Integral, 1, None, closed="left")],
        "mixed_precision": ["boolean"],
        "device": DEVICE_CONSTRAINT,
        "dtype": [StrOptions({"float64", "float32"})],
        "verbose": ["verbose"],
        "random_state": ["random_state"],
        "warm_start": ["boolean"],
    }

    def __init__(
        self,
        *,
        feature_times=None,
        feature_blocks=None,
        architecture="dense",
        kernel_size=3,
        n_hidden=None,
        n_blocks=3,
        time_embedding_dim=512,
        activation="silu",
        schedule="cosine",
        n_diffusion_steps=1000,
        parameterization=None,
        max_iter=400,
        batch_size=2048,
        learning_rate=1e-3,
        lr_schedule="cosine",
        warmup_iter=50,
        t_sampling="uniform",
        ema_decay=None,
        validation_fraction=None,
        n_iter_no_change=None,
        tol=1e-4,
        eval_every=100,
        mixed_precision=True,
        device="auto",
        dtype="float64",
        verbose=0,
        random_state=None,
        warm_start=False,
    ):
        self.feature_times = feature_times
        self.feature_blocks = feature_blocks
        self.architecture = architecture
        self.kernel_size = kernel_size
        self.n_hidden = n_hidden
        self.n_blocks = n_blocks
        self.time_embedding_dim = time_embedding_dim
        self.activation = activation
        self.schedule = schedule
        self.n_diffusion_steps = n_diffusion_steps
        self.parameterization = parameterization
        self.max_iter = max_iter
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.lr_schedule = lr_schedule
        self.warmup_iter = warmup_iter
        self.t_sampling = t_sampling
        self.ema_decay = ema_decay
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.eval_every = eval_every
        self.mixed_precision = mixed_precision
        self.device = device
        self.dtype = dtype
        self.verbose = verbose
        self.random_state = random_state
        self.warm_start = warm_start

    @fit_context()
    def fit(self, X, y=None):
        """Standardise the states and train the denoiser on them.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training states, any number of state variables.
        y : None
            Ignored.

        Returns
        -------
        self : DiffusionFeaturizer
            The fitted featurizer.

        Raises
        ------
        skdiffusion.engine.TrainingDivergedError
            If the training loss diverges (a ``ValueError``); the featurizer
            is then left as it was before the call.

        Warns
        -----
        UserWarning
            If training is interrupted (KeyboardInterrupt); the featurizer is
            fitted with the weights trained so far.
        """
        continuing = self.warm_start and hasattr(self, "network_state_")
        if continuing:
            check_unchanged(self, self.network_params_, "fit with warm_start=True")
        X = validate_data(
            self, X, dtype=[np.float64, np.float32], reset=not continuing
        )
        self._times()
        self._blocks()
        device = resolve_device(self.device)
        rng = check_random_state(self.random_state)
        mean, scale = (self.mean_, self.scale_) if continuing else self._moments(X)
        model = seeded_module(lambda: self._new_network(X.shape[1]), rng)
        if continuing:
            model.load_state_dict(from_numpy_state(self.network_state_))
        X_t = standardized_tensor(X, mean, scale, device)
        history = self._train(model.to(device), X_t, rng, device, continuing)

        self.mean_, self.scale_ = mean, scale
        self.network_params_ = {k: getattr(self, k) for k in _NETWORK_CONSTRAINTS}
        self._defaults_version = _DEFAULTS_VERSION  # what its None values mean
        self.network_state_ = to_numpy_state(model.state_dict())
        self.ema_state_ = None if history.ema is None else to_numpy_state(history.ema)
        self._optimizer_state = history.optimizer_state
        self.loss_curve_ = list(history.loss_curve)
        self.validation_scores_ = (
            None if self.validation_fraction is None else history.validation_scores
        )
        self.n_iter_ = history.n_iter
        self._models = {}  # device -> network, filled by _network (not __dict__)
        warn_training_end(self, history)
        return self

    def _train(self, model, X, rng, device, continuing):
        """Train `model` in place on the standardised states `X`."""
        X_val = None
        if self.validation_fraction is not None:
            train_rows, val_rows = split_rows(len(X), self.validation_fraction, rng)
            X, X_val = X[train_rows], X[val_rows]
        history = continued_history(self, continuing)
        return diffusion.train_denoiser(
            model,
            X,
            schedule=self._schedule(),
            parameterization=self._parameterization(),
            t_sampling=self.t_sampling,
            autocast_dtype=(
                diffusion.fast_autocast_dtype(device) if self.mixed_precision else None
            ),
            X_val=X_val,
            generator=training_generator(rng, device, history.n_iter),
            max_iter=self.max_iter,
            batch_size=self.batch_size,
            learning_rate=self.learning_rate,
            lr_schedule=self.lr_schedule,
            warmup_iter=self.warmup_iter,
            ema_decay=self.ema_decay,
            eval_every=self.eval_every,
            n_iter_no_change=self.n_iter_no_change,
            tol=self.tol,
            optimizer_state=self._optimizer_state if continuing else None,
            ema_state=self.ema_state_ if continuing else None,
            history=history,
            verbose=self.verbose,
            desc=type(self).__name__,
        )

    def _schedule(self):
        return diffusion.get_schedule(self.schedule, self.n_diffusion_steps)

    def _new_network(self, n_features):
        return diffusion.build_denoiser(
            self.architecture,
            n_features,
            n_hidden=self._width(),
            n_blocks=self.n_blocks,
            time_embedding_dim=self.time_embedding_dim,
            n_steps=self.n_diffusion_steps,
            activation=self.activation,
            kernel_size=self.kernel_size,
        )

    def _resolved(self, name):
        """The parameter ``name``, or its architecture's default if None."""
        value = getattr(self, name)
        return _DEFAULTS[self.architecture][name] if value is None else value

    def _width(self):
        return self._resolved("n_hidden")

    def _parameterization(self):
        return self._resolved("parameterization")

    def _times(self):
        return check_feature_times(self._resolved("feature_times"),
                                   self.n_diffusion_steps)

    def _last_block_only(self):
        blocks = self._resolved("feature_blocks")
        return isinstance(blocks, str) and blocks == "last"

    def _blocks(self):
        """`feature_blocks` as a tuple of block numbers (0: input projection)."""
        if self._last_block_only():
            return (self.n_blocks,)
        blocks = self._resolved("feature_blocks")
        if isinstance(blocks, str) and blocks == "all":
            return tuple(range(1, self.n_blocks + 1))
        blocks = np.asarray(blocks)
        if (
            blocks.ndim != 1 or blocks.size == 0
            or not np.issubdtype(blocks.dtype, np.integer)
            or blocks.min() < 0 or blocks.max() > self.n_blocks
            or len(np.unique(blocks)) < blocks.size
        ):
            raise ValueError(
                "feature_blocks must be None, 'last', 'all' or distinct block "
                "numbers in "
                f"0..{self.n_blocks} (n_blocks), got {self.feature_blocks!r}."
            )
        return tuple(blocks.tolist())

    def _site_width(self):
        """Features per site (per state for "dense"): times x blocks x units."""
        return len(self._times()) * len(self._blocks()) * self._width()

    def _moments(self, X):
        """Standardisation: per state variable, or one for all sites of a ring."""
        return mean_and_scale(X if self.architecture == "dense" else X.reshape(-1, 1))

    def _states(self, X):
        """Validated states; a "conv" network takes rings of any size."""
        if self.architecture == "dense":
            return validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        return check_array(X, dtype=[np.float64, np.float32])

    def _network(self, use):
        """The fitted network on ``device`` (built once, cached), and the device."""
        check_is_fitted(self)
        check_unchanged(self, self.network_params_, use)
        if self.dtype not in ("float64", "float32"):  # read at use, like device
            raise ValueError(f"dtype must be 'float64' or 'float32': {self.dtype!r}")
        device = resolve_device(self.device)
        if device not in self._models:
            # seeded: building must not draw from the user's global generator
            model = seeded_module(lambda: self._new_network(self.n_features_in_), 0)
            model.load_state_dict(from_numpy_state(self.network_state_))
            if self.ema_state_ is not None:
                model.load_state_dict(from_numpy_state(self.ema_state_), strict=False)
            self._models.clear()
            self._models[device] = model.to(device).eval().requires_grad_(False)
        return self._models[device], device

    def _standardized(self, X, device):
        return standardized_tensor(X, self.mean_, self.scale_, device)

    def transform(self, X):
        """Return the features of the states ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            States, in the units of the training states.

        Returns
        -------
        features : ndarray of shape (n_samples, n_hidden * n_times), of ``dtype``
            Column ``i * n_hidden + j`` is unit ``j`` of the last residual
            block at ``feature_times[i]``; with ``feature_blocks``, ``n_hidden``
            units per block, block after block at each time ("conv": site
            after site, see :class:`~skdiffusion.diffusion.ConvDenoiser`).
        """
        model, device = self._network("transform")
        if is_dask_array(X):  # lazily, block by block
            n_sites = 1 if self.architecture == "dense" else X.shape[1]
            n_columns = n_sites * self._site_width()
            return lazy_transform(self.transform, X, n_columns, self.dtype)
        X = self._states(X)
        times, blocks = self._times().tolist(), self._blocks()
        n_sites = 1 if self.architecture == "dense" else X.shape[1]
        features = np.empty((X.shape[0], n_sites * self._site_width()), self.dtype)
        # fill the output in place: no concatenation, no copy of the whole
        out = torch.from_numpy(features)
        with torch.inference_mode():
            for rows in row_chunks(X.shape[0], _TRANSFORM_CHUNK):
                x = self._standardized(X[rows], device)
                out[rows] = model.features(x, times, blocks)
        return features

    def get_feature_names_out(self, input_features=None):
        """Names of the features: ``"t{time}_h{unit}"``, e.g. ``"t400_h17"``.

        With ``feature_blocks``, the block is named too (``"t400_b2_h17"``);
        a "conv" featurizer names the site (``"t400_s3_h17"``).

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            Only checked against the names seen in ``fit``.

        Returns
        -------
        feature_names_out : ndarray of str objects
            One name per column of ``transform``, times in the order of
            ``feature_times``.
        """
        check_is_fitted(self)
        _check_feature_names_in(self, input_features, generate_names=False)
        # the block is named only when it is not the last block alone
        prefixes = [""] if self._last_block_only() else [
            f"b{block}_" for block in self._blocks()
        ]
        units = [f"{p}h{j}" for p in prefixes for j in range(self._width())]
        if self.architecture == "dense":
            names = [f"t{time}_{unit}" for time in self._times() for unit in units]
        else:
            sites, times = range(self.n_features_in_), self._times()
            names = [f"t{t}_s{s}_{u}" for s in sites for t in times for u in units]
        return np.asarray(names, dtype=object)

    @validate_params(
        {**_SAMPLING, "n_samples": [Interval(Integral, 1, None, closed="left")]},
        prefer_skip_nested_validation=True,
    )
    def sample(self, n_samples, *, n_steps=100, method="ddpm", random_state=None):
        """Generate states by denoising pure noise.

        Parameters
        ----------
        n_samples : int
            Number of states to generate.
        n_steps : int, default=100
            Number of denoising steps, evenly spaced from step T to 0.
        method : {"ddpm", "ddim"}, default="ddpm"
            Ancestral (stochastic) DDPM or deterministic DDIM sampling.
        random_state : int, RandomState instance or None, default=None
            Seeds the noise.

        Returns
        -------
        X : ndarray of shape (n_samples, `n_features_in_`), of ``dtype``
            Generated states, in the units of the training states.
        """
        model, _ = self._network("sample")
        # float32 out, then a float64 copy in training units: 16 bytes a value
        width = self.n_features_in_
        check_memory(
            16 * n_samples * width, f"n_samples={n_samples} states of {width} values"
        )
        samples = diffusion.generate(
            model,
            n_samples,
            self.n_features_in_,
            self._schedule(),
            n_steps=n_steps,
            method=method,
            parameterization=self._parameterization(),
            generator=torch_generator(random_state),
            chunk_size=_SAMPLE_CHUNK,
            disable=not self.verbose,
        )
        return (samples.numpy() * self.scale_ + self.mean_).astype(self.dtype)

    @validate_params(
        {
            **_SAMPLING,
            "n_steps": [None, Interval(Integral, 1, None, closed="left")],
            "tau": [Interval(Integral, 0, None, closed="left")],
            "n_members": [Interval(Integral, 1, None, closed="left")],
        },
        prefer_skip_nested_validation=True,
    )
    def sample_ensemble(
        self, X, tau, n_members, *, n_steps=None, method="ddpm", random_state=None
    ):
        """Generate an ensemble of states near each state by partial diffusion.

        Each member is the state noised to pseudo-time ``tau``, then denoised
        by the network (Finn et al., 2024); the spread grows with ``tau``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Centre states (e.g. forecasts), in the units of the training
            states.
        tau : int
            Pseudo-time in ``0..n_diffusion_steps`` to noise to; 0 returns
            copies of ``X``. The paper uses about 130 of 1000.
        n_members : int
            Members per state.
        n_steps : int, default=None
            Denoising steps from ``tau`` to 0. None uses the spacing of a
            100-step grid over the whole diffusion, ``ceil(100 * tau / T)``
            steps (13 for ``tau=130``), as in the paper.
        method : {"ddpm", "ddim"}, default="ddpm"
            Ancestral (stochastic) DDPM or deterministic DDIM denoising.
        random_state : int, RandomState instance or None, default=None
            Seeds the noise.

        Returns
        -------
        ensemble : ndarray of shape (n_samples, n_members, n_features), of ``dtype``
            The members, in the units of the training states.
        """
        model, device = self._network("sample_ensemble")
        X = self._states(X)
        if tau > self.n_diffusion_steps:
            raise ValueError(
                f"tau must be in 0..{self.n_diffusion_steps} (n_diffusion_steps), "
                f"got {tau!r}."
            )
        check_memory(
            16 * X.size * n_members, f"n_members={n_members} members of {X.shape}"
        )
        if n_steps is None:
            n_steps = diffusion.ensemble_steps(tau, self.n_diffusion_steps)
        members = diffusion.ensemble(
            model,
            self._standardized(X, "cpu"),
            int(tau),
            n_members,
            self._schedule(),
            n_steps=n_steps,
            method=method,
            parameterization=self._parameterization(),
            generator=torch_generator(random_state),
            chunk_size=_SAMPLE_CHUNK,
            disable=not self.verbose,
        )
        return (members.numpy() * self.scale_ + self.mean_).astype(self.dtype)

    def score(self, X, y=None):
        """Return the negative denoising loss on ``X`` (higher is better).

        Steps and noise are drawn from a fixed seed, so the score is
        deterministic and featurizers compared on the same ``X`` see the
        same noised states.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Clean states, in the units of the training states.
        y : None
            Ignored.

        Returns
        -------
        score : float
            Minus the mean squared error of the network's prediction (in
            standardised units) on noised copies of ``X``.
        """
        model, device = self._network("score")
        X = self._states(X)
        loss = diffusion.denoising_loss(
            model,
            self._standardized(X, device),
            schedule=self._schedule(),
            parameterization=self._parameterization(),
            generator=torch.Generator().manual_seed(_SCORE_SEED),
            batch_size=_SAMPLE_CHUNK,
        )
        return -loss

    def __getstate__(self):
        # the cached torch module may live on a GPU: pickle the CPU state only
        return reproducible_state({**super().__getstate__(), "_models": {}})

    def __setstate__(self, state):
        # pickled before the dtype parameter: their outputs were float32
        # (setdefault keeps the keys' order, so pickles stay byte-identical)
        state = dict(state)
        state.setdefault("dtype", "float32")
        state.setdefault("feature_blocks", None)  # pickled before the parameter
        old_defaults = state.get("_defaults_version", 1) < _DEFAULTS_VERSION
        if old_defaults and "network_params_" in state and (
            state.get("architecture") == "conv"
        ):
            _pin_old_conv_defaults(state)
        super().__setstate__(state)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = [self.dtype]
        return tags


def _pin_old_conv_defaults(state):
    """Give a "conv" featurizer pickled before the recipe defaults their old values.

    There, None meant ``_OLD_CONV_DEFAULTS`` (``kernel_size`` and
    ``parameterization`` were stored as values), so its network and
    features stay as they were.
    """
    params = dict(state["network_params_"])
    for name, value in _OLD_CONV_DEFAULTS.items():
        if state.get(name) is None:
            state[name] = value
        if name in params and params[name] is None:
            params[name] = value
    state["network_params_"] = params


def _median_distance(X, max_rows=1000):
    """Median distance between rows of X (at most ``max_rows``, evenly spaced)."""
    rows = X[:: max(1, -(-len(X) // max_rows))]
    return float(np.median(pdist(rows))) if len(rows) > 1 else 0.0


def check_feature_times(feature_times, n_diffusion_steps):
    """`feature_times` as distinct int64 steps in ``0..n_diffusion_steps``.

    Raises a ValueError naming `feature_times` otherwise.
    """
    times = np.asarray(feature_times)
    if (
        times.ndim != 1
        or times.size == 0
        or not np.issubdtype(times.dtype, np.number)
        or np.issubdtype(times.dtype, np.complexfloating)
        or not np.all(np.isfinite(times))
        or np.any(times != np.round(times))
    ):
        raise ValueError(
            "feature_times must be a non-empty 1-D sequence of integer "
            f"steps, got {feature_times!r}."
        )
    if np.any((times < 0) | (times > n_diffusion_steps)):
        raise ValueError(
            f"feature_times must lie in 0..{n_diffusion_steps} (n_diffusion_steps), "
            f"got {feature_times!r}."
        )
    if np.unique(times).size != times.size:
        raise ValueError(f"feature_times must be distinct, got {feature_times!r}.")
    return times.astype(np.int64)
