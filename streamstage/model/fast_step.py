"""A fast recurrent step of :class:`~streamstage.model.stager.StagingNet` on CPU, in NumPy.

Live staging steps a tiny model once per epoch; PyTorch's per-operator dispatch then costs far more than the
~140k multiply-adds themselves (about 1 ms against 50-60 µs here). :class:`FastStepper` runs the same
function on preallocated float32 buffers with NumPy, calling torch (on views of the same memory) only for
the few operators it does faster (SiLU in place, softplus, erf, the fused ``y += x D`` and outer-product
update; the SSM decays in batches of 4 streams or more), and with a few
algebraically equal rewrites that save passes: each RMSNorm's weight folded into the projection after it
(its per-row scale applied to the narrower side), the conv bias as one more tap, GELU's ½ in the second
embedding layer, ``exp(x)`` as ``exp2(x log2 e)``. Each was kept because it measured faster. The pure
PyTorch ``StagingNet.step`` stays the reference oracle: this equals it within float32 rounding (tested to
1e-5) and is deterministic, the same inputs and state giving bit-identical outputs however a night is cut
into calls, saved and resumed (for a given number of streams stepped together).

Its state goes in and out as a :class:`~streamstage.model.stack.StackState`, so a night saved by either
implementation (``state.npz``) resumes in the other. Nothing is compiled at run time.

    stepper = FastStepper.from_net(model.net)       # batch 1, an empty history
    logits = stepper.step(features[None])           # (1, n_channels, n_features) -> (1, n_stages)
    state = stepper.to_stack_state()                # what StagingNet.step carries
    stepper.load_stack_state(state)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from streamstage.errors import ModelError
from streamstage.model.mamba import Mamba, MambaCache
from streamstage.model.stack import RMSNorm, StackState
from streamstage.model.stager import StagingNet

DTYPE = np.float32
"""Weights, activations and state (the reference keeps its state in float32 too)."""
_SQRT_HALF = np.float32(np.sqrt(0.5))
TORCH_DECAY_ROWS = 4
"""From this many streams in a step on, the SSM decays are computed by torch (measured faster there)."""


def _numpy(tensor: torch.Tensor) -> np.ndarray:
    """Float64, so the fused weights are formed before the single rounding to float32."""
    return tensor.detach().to("cpu", torch.float64).numpy()


def _f32(array: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(array, dtype=DTYPE)


def _rms_folded(norm: torch.nn.Module, weight_t: np.ndarray) -> tuple[np.ndarray, float]:
    """``weight_t`` (d_model, out) scaled by the norm weight and √d_model, and ``d_model * eps``.

    ``rmsnorm(x) @ W = (x @ (√d · w · W)) / sqrt(Σx² + d·eps)``: one scalar per row instead of a pass.
    """
    if not isinstance(norm, RMSNorm):
        raise ModelError(f"FastStepper steps RMSNorm stacks only, not {type(norm).__name__}.")
    d_model = weight_t.shape[0]
    folded = np.sqrt(d_model) * _numpy(norm.weight)[:, None] * weight_t
    return _f32(folded), d_model * float(norm.eps)


@dataclass(frozen=True)
class _Layer:
    """One residual Mamba layer's weights, transposed for ``x @ w`` and fused where that saves a pass."""

    w_in: np.ndarray
    """(d_model, 2 d_inner): ``in_proj`` with the norm folded in (see :func:`_rms_folded`)."""
    norm_eps: float
    conv_w: np.ndarray
    """(d_conv + 1, 1, d_inner): the taps, oldest first, then the bias (the state's last row is ones)."""
    w_x: np.ndarray
    """(d_inner, dt_rank + 2 d_state): ``x_proj`` (dt, B, C)."""
    w_dt: np.ndarray
    """(dt_rank, d_inner): ``dt_proj`` (kept apart: fused with x_proj it would cost 4x the flops)."""
    dt_bias: np.ndarray
    A_log2e: np.ndarray
    """(d_state, d_inner): ``A log2(e)``, for ``exp2`` (40 % faster than ``exp`` in NumPy), in the
    transposed layout the state is kept in."""
    D: torch.Tensor
    """(d_inner,): the skip, for torch's fused ``y += x D``."""
    w_out: np.ndarray

    @classmethod
    def of(cls, norm: torch.nn.Module, mixer: Mamba) -> _Layer:
        if mixer.in_proj.bias is not None or mixer.out_proj.bias is not None or mixer.conv1d.bias is None:
            raise ModelError(
                "FastStepper needs Mamba layers as the stager builds them (bias=False, conv_bias)."
            )
        w_in, norm_eps = _rms_folded(norm, _numpy(mixer.in_proj.weight).T)
        return cls(
            w_in=w_in,
            norm_eps=norm_eps,
            conv_w=_f32(
                np.vstack([_numpy(mixer.conv1d.weight)[:, 0, :].T, _numpy(mixer.conv1d.bias)])[:, None]
            ),
            w_x=_f32(_numpy(mixer.x_proj.weight).T),
            w_dt=_f32(_numpy(mixer.dt_proj.weight).T),
            dt_bias=_f32(_numpy(mixer.dt_proj.bias)),
            A_log2e=_f32(-np.exp(_numpy(mixer.A_log)).T * np.log2(np.e)),
            D=torch.from_numpy(_f32(_numpy(mixer.D))),
            w_out=_f32(_numpy(mixer.out_proj.weight).T),
        )


class _Scratch:
    """Intermediate buffers for a batch of ``rows`` streams, reused by every layer and every step.

    The SSM's (d_state, rows, d_inner) arrays are laid out so every pass over them runs along contiguous
    rows of at least d_inner values (NumPy's broadcasting is slow over short inner loops). ``t_*`` are
    torch views of the same memory, for the few operators torch does faster (SiLU, softplus, erf, the
    fused updates, and the decays from :data:`TORCH_DECAY_ROWS` streams on).
    """

    def __init__(self, rows: int, layers: Sequence[_Layer], d_model: int, d_conv: int) -> None:
        d_state, d_inner = layers[0].A_log2e.shape

        def buffer(*shape: int) -> np.ndarray:
            return np.zeros(shape, dtype=DTYPE)

        self.hidden = buffer(rows, d_model)
        self.erf = buffer(rows, d_model)
        self.residual = buffer(rows, d_model)
        self.mixed = buffer(rows, d_model)
        self.normed = buffer(rows, d_model)
        self.scale = buffer(rows)
        self.xz = buffer(rows, 2 * d_inner)
        self.taps = buffer(d_conv + 1, rows, d_inner)
        self.xc = buffer(rows, d_inner)
        self.dbc = buffer(rows, layers[0].w_x.shape[1])
        self.delta = buffer(rows, d_inner)
        self.dx = buffer(rows, d_inner)
        self.y = buffer(rows, 1, d_inner)
        self.grid = buffer(d_state, rows * d_inner)
        # The decays exp2(delta A log2 e): from 4 streams on, torch's broadcast multiply and exp2 are faster
        # (1.7x at 32); below, NumPy's, on A tiled over the streams so the multiply runs in long rows.
        self.torch_decay = rows >= TORCH_DECAY_ROWS
        if self.torch_decay:
            self.decay_a = [torch.from_numpy(layer.A_log2e[:, None, :].copy()) for layer in layers]
            self.t_grid = torch.from_numpy(self.grid).view(d_state, rows, d_inner)
        else:
            self.decay_a = [np.tile(layer.A_log2e, (1, rows)) for layer in layers]
        self.t_erf, self.t_xc, self.t_delta = map(torch.from_numpy, (self.erf, self.xc, self.delta))
        self.t_dx = torch.from_numpy(self.dx)[None]
        self.t_z = torch.from_numpy(self.xz)[:, d_inner:]
        # Views, made once: slicing costs as much as a small operator.
        dt_rank = layers[0].w_dt.shape[0]
        self.x_in, self.z = self.xz[:, :d_inner], self.xz[:, d_inner:]
        self.dt = self.dbc[:, :dt_rank]
        self.t_b = torch.from_numpy(self.dbc)[:, dt_rank : dt_rank + d_state].T[:, :, None]  # strided
        self.c_rows = self.dbc[:, None, dt_rank + d_state :]
        self.y_rows = self.y[:, 0]
        self.t_y = torch.from_numpy(self.y_rows)
        self.grid_state = self.grid.reshape(d_state, rows, d_inner)


@dataclass(frozen=True)
class _LayerState:
    """One layer's state for some streams, as arrays (updated in place) and the views the step needs."""

    conv: np.ndarray
    ssm: np.ndarray
    ssm_t: torch.Tensor
    ssm_by_stream: np.ndarray
    """``ssm`` as (streams, d_state, d_inner), for the readout matmul."""

    @classmethod
    def of(cls, conv: np.ndarray, ssm: np.ndarray) -> _LayerState:
        return cls(conv, ssm, torch.from_numpy(ssm), ssm.transpose(1, 0, 2))


class FastStepper:
    """A batch of streams stepped through a :class:`StagingNet` one epoch at a time, in NumPy.

    Holds the recurrent state of ``batch_size`` streams (each layer's last ``d_conv`` conv inputs and its
    SSM state). :meth:`step` advances all of them, :meth:`step_streams` only some (nights of different
    lengths evaluated together), :meth:`run` a whole sequence; :meth:`to_stack_state` and
    :meth:`load_stack_state` exchange the state with ``StagingNet.step``.
    """

    def __init__(self, net: StagingNet, batch_size: int = 1) -> None:
        if net.backward_backbone is not None:
            raise ModelError(
                "a bidirectional model is an offline reference and cannot step; use a causal one."
            )
        if batch_size < 1:
            raise ModelError(f"FastStepper needs batch_size >= 1, got {batch_size}.")
        config = net.config
        first, _, second = net.embed
        self.batch_size = batch_size
        self.n_channels = len(config.channels)
        self.n_features = config.n_features
        self.n_stages = len(config.stages)
        self.d_model = config.d_model
        self._embed_w = _f32(_numpy(first.weight).T)
        self._embed_b = _f32(_numpy(first.bias))
        self._embed2_w = _f32(0.5 * _numpy(second.weight).T)  # GELU's 1/2, folded
        self._embed2_b = _f32(_numpy(second.bias))
        self._layers = tuple(_Layer.of(block.norm, block.mixer) for block in net.backbone.layers)
        self._head_w, self._head_eps = _rms_folded(net.backbone.norm_f, _numpy(net.head.weight).T)
        self._head_b = _f32(_numpy(net.head.bias))
        self.d_conv = net.backbone.layers[0].mixer.d_conv
        self.d_state, self.d_inner = self._layers[0].A_log2e.shape
        self._scratch: dict[int, _Scratch] = {}
        # Per layer, both (..., batch, d_inner): the last d_conv conv inputs (row 0, the oldest, rolls out at
        # the next step) then a row of ones for the bias; and the SSM state, state-major.
        n_layers = len(self._layers)
        self._conv = np.zeros((n_layers, self.d_conv + 1, batch_size, self.d_inner), dtype=DTYPE)
        self._conv[:, self.d_conv] = 1.0
        self._ssm_t = torch.zeros((n_layers, self.d_state, batch_size, self.d_inner), dtype=torch.float32)
        self._ssm = self._ssm_t.numpy()  # the same memory; torch does the fused outer-product update
        self._whole = [_LayerState.of(c, h) for c, h in zip(self._conv, self._ssm, strict=True)]

    @classmethod
    def from_net(cls, net: StagingNet, batch_size: int = 1) -> FastStepper:
        """A stepper with ``net``'s weights (copied: later training does not reach it), empty history."""
        return cls(net, batch_size)

    @property
    def n_layers(self) -> int:
        return len(self._layers)

    @property
    def nbytes(self) -> int:
        """The carried state's size, counted as :attr:`StackState.nbytes` counts it."""
        return self.n_layers * self.batch_size * self.d_inner * (self.d_conv - 1 + self.d_state) * 4

    def reset(self) -> None:
        """Every stream back to an empty history."""
        self._conv[:, : self.d_conv] = 0.0
        self._ssm[...] = 0.0

    def step(self, inputs: np.ndarray) -> np.ndarray:
        """One epoch of every stream: ``(batch_size, n_channels, n_features)`` -> logits
        ``(batch_size, n_stages)``, a new array."""
        return self._advance(self._checked(inputs, self.batch_size), self._whole)

    def step_streams(self, inputs: np.ndarray, streams: Sequence[int] | np.ndarray) -> np.ndarray:
        """One epoch of some streams only, the others keeping their state: inputs ``(len(streams), ...)``.

        ``streams`` are distinct indices into the batch. A leading range ``0..k-1`` steps in place, without
        copying state: evaluate nights longest first (as :meth:`stage_nights` does).
        """
        index = np.asarray(streams, dtype=np.intp).reshape(-1)
        x = self._checked(inputs, len(index))
        if len(np.unique(index)) != len(index) or not np.all((index >= 0) & (index < self.batch_size)):
            raise ModelError(
                f"streams must be distinct indices below batch_size={self.batch_size}, got {index.tolist()}."
            )
        k = len(index)
        if np.array_equal(index, np.arange(k)):
            prefix = zip(self._conv[:, :, :k], self._ssm[:, :, :k], strict=True)
            return self._advance(x, [_LayerState.of(c, h) for c, h in prefix])
        conv_rows, ssm_rows = self._conv[:, :, index], self._ssm[:, :, index]  # copies, written back
        logits = self._advance(x, [_LayerState.of(c, h) for c, h in zip(conv_rows, ssm_rows, strict=True)])
        self._conv[:, :, index], self._ssm[:, :, index] = conv_rows, ssm_rows
        return logits

    def run(self, sequence: np.ndarray) -> np.ndarray:
        """Many epochs: ``(batch_size, n_epochs, n_channels, n_features)`` -> logits
        ``(batch_size, n_epochs, n_stages)``; the same numbers as that many :meth:`step` calls."""
        sequence = np.asarray(sequence, dtype=DTYPE)
        if sequence.ndim != 4:
            raise ModelError(
                f"run takes (batch, n_epochs, n_channels, n_features), got shape {sequence.shape}."
            )
        logits = np.empty((sequence.shape[0], sequence.shape[1], self.n_stages), dtype=DTYPE)
        for epoch in range(sequence.shape[1]):
            logits[:, epoch] = self.step(sequence[:, epoch])
        return logits

    def stage_nights(self, nights: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Logits ``(n_epochs_i, n_stages)`` of whole nights ``(n_epochs_i, n_channels, n_features)``,
        stepped together from an empty history (at most ``batch_size`` nights; this resets the state)."""
        if len(nights) > self.batch_size:
            raise ModelError(f"{len(nights)} nights do not fit a stepper of batch_size={self.batch_size}.")
        self.reset()
        order = sorted(range(len(nights)), key=lambda i: -len(nights[i]))  # longest first: a prefix steps
        lengths = [len(nights[i]) for i in order]
        logits = [np.empty((n, self.n_stages), dtype=DTYPE) for n in lengths]
        for epoch in range(lengths[0] if lengths else 0):
            active = sum(n > epoch for n in lengths)
            rows = self.step_streams(
                np.stack([nights[order[j]][epoch] for j in range(active)]), range(active)
            )
            for j in range(active):
                logits[j][epoch] = rows[j]
        result: list[np.ndarray] = [np.empty(0)] * len(nights)
        for j, i in enumerate(order):
            result[i] = logits[j]
        return result

    def to_stack_state(self) -> StackState:
        """The state as ``StagingNet.step`` carries it (copies: stepping on leaves it as it is)."""
        return StackState(
            tuple(
                MambaCache(
                    torch.from_numpy(conv[1 : self.d_conv].transpose(1, 2, 0).copy()),
                    torch.from_numpy(ssm.transpose(1, 2, 0).copy()),
                )
                for conv, ssm in zip(self._conv, self._ssm, strict=True)
            )
        )

    def load_stack_state(self, state: StackState) -> None:
        """Continue from a state of ``StagingNet.step`` (or :meth:`to_stack_state`), same model and batch."""
        expected = (
            (self.batch_size, self.d_inner, self.d_conv - 1),
            (self.batch_size, self.d_inner, self.d_state),
        )
        shapes = [(tuple(c.conv_state.shape), tuple(c.ssm_state.shape)) for c in state.layers]
        if shapes != [expected] * self.n_layers:
            raise ModelError(
                f"the state has layer shapes {shapes} but this stepper needs {self.n_layers} x {expected}; "
                "load a state of this model with this batch size."
            )
        for i, cache in enumerate(state.layers):
            self._conv[i, 0] = 0.0
            self._conv[i, 1 : self.d_conv] = cache.conv_state.detach().cpu().numpy().transpose(2, 0, 1)
            self._ssm[i] = cache.ssm_state.detach().cpu().numpy().transpose(2, 0, 1)

    def _checked(self, inputs: np.ndarray, rows: int) -> np.ndarray:
        x = np.asarray(inputs, dtype=DTYPE)
        if x.shape != (rows, self.n_channels, self.n_features):
            raise ModelError(
                f"expected inputs of shape ({rows}, {self.n_channels}, {self.n_features}), got {x.shape}."
            )
        return x.reshape(rows, self.n_channels * self.n_features)

    def _buffers(self, rows: int) -> _Scratch:
        if rows not in self._scratch:
            self._scratch[rows] = _Scratch(rows, self._layers, self.d_model, self.d_conv)
        return self._scratch[rows]

    def _advance(self, x: np.ndarray, states: Sequence[_LayerState]) -> np.ndarray:
        """The whole step for ``len(x)`` streams; each layer's state moves on in place."""
        s = self._buffers(len(x))
        h = s.hidden
        np.matmul(x, self._embed_w, out=h)
        h += self._embed_b
        np.multiply(h, _SQRT_HALF, out=s.erf)  # exact GELU: x (1 + erf(x / √2)), ½ folded
        torch.erf(s.t_erf, out=s.t_erf)
        s.erf += 1.0
        h *= s.erf
        np.matmul(h, self._embed2_w, out=s.residual)
        s.residual += self._embed2_b
        for i, layer in enumerate(self._layers):
            _layer_step(layer, s, s.decay_a[i], states[i])
        logits = np.matmul(s.residual, self._head_w)
        logits /= _row_scale(s, self._head_eps)
        logits += self._head_b
        return logits


def _row_scale(s: _Scratch, eps: float) -> np.ndarray:
    """``sqrt(Σ residual² + d·eps)`` per stream, ``(rows, 1)``: divide by it to normalise (see
    :func:`_rms_folded`)."""
    scale = s.scale
    np.einsum("bd,bd->b", s.residual, s.residual, out=scale)
    scale += eps
    np.sqrt(scale, out=scale)
    return scale[:, None]


def _layer_step(w: _Layer, s: _Scratch, decay_a: np.ndarray | torch.Tensor, state: _LayerState) -> None:
    """``residual += mixer(norm(residual))`` for one layer; its state moves on in place."""
    xz, xc, delta, conv, ssm = s.xz, s.xc, s.delta, state.conv, state.ssm
    np.divide(s.residual, _row_scale(s, w.norm_eps), out=s.normed)  # (the narrower side of in_proj)
    np.matmul(s.normed, w.w_in, out=xz)
    d_conv = len(conv) - 1  # causal depthwise conv over the last d_conv inputs (+ bias), then SiLU
    conv[: d_conv - 1] = conv[1:d_conv]
    conv[d_conv - 1] = s.x_in
    np.multiply(conv, w.conv_w, out=s.taps)
    np.add.reduce(s.taps, axis=0, out=xc)
    F.silu(s.t_xc, inplace=True)
    np.matmul(xc, w.w_x, out=s.dbc)  # (dt, B, C), then delta = softplus(dt_proj(dt))
    np.matmul(s.dt, w.w_dt, out=delta)
    delta += w.dt_bias
    delta_t = F.softplus(s.t_delta)
    delta = delta_t.numpy()
    grid = s.grid  # h = exp(delta A) h + (delta x) B, over (d_state, streams x d_inner)
    if s.torch_decay:
        torch.mul(decay_a, delta_t, out=s.t_grid)
        torch.exp2(s.t_grid, out=s.t_grid)
    else:
        np.multiply(decay_a, delta.reshape(1, -1), out=grid)
        np.exp2(grid, out=grid)
    ssm *= s.grid_state
    np.multiply(delta, xc, out=s.dx)
    state.ssm_t.addcmul_(s.t_b, s.t_dx)
    np.matmul(s.c_rows, state.ssm_by_stream, out=s.y)  # y = C h + D x
    s.t_y.addcmul_(s.t_xc, w.D)
    F.silu(s.t_z, inplace=True)  # gated by silu(z)
    s.y_rows *= s.z
    np.matmul(s.y_rows, w.w_out, out=s.mixed)
    s.residual += s.mixed
