"""A fast recurrent step of a staging model on CPU, in NumPy: one network or every member of an ensemble.

Live staging steps a tiny model once per epoch; PyTorch's per-operator dispatch then costs far more than the
multiply-adds themselves (about 1 ms a network against ~50 µs here for all three members of the default
model). :class:`FastStepper` runs the same function on preallocated float32 buffers with NumPy, every
member of an ensemble in the same operators (stacked weights, batched matmuls: at batch 1 the cost is the
number of operators, so three members cost about what one does), calling torch (on views of the same
memory) only for the few operators it does faster (SiLU in place, softplus, erf, the fused ``y += x D`` and
outer-product update; the SSM decays from a few streams on). The weights' rewrites are in
:mod:`~streamstage.model.fast_weights`. The pure PyTorch ``StagingNet.step`` / ``EnsembleNet.step`` stays
the reference oracle: this equals it within float32 rounding (tested to 1e-5) and is deterministic, the same
inputs and state giving bit-identical outputs however a night is cut into calls, saved and resumed (for a
given number of streams stepped together).

Its state goes in and out as a :class:`~streamstage.model.stack.StackState` (an ensemble's: the members'
layers in order), so a night saved by either implementation (``state.npz``) resumes in the other. Nothing
is compiled at run time.

    stepper = FastStepper.from_net(model.net)       # batch 1, an empty history
    probs = stepper.probabilities(features[None])   # (1, n_channels, n_features) -> (1, n_stages)
    state = stepper.to_stack_state()                # what the reference step carries
    stepper.load_stack_state(state)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from streamstage.errors import ModelError
from streamstage.model.ensemble import EnsembleNet, networks
from streamstage.model.fast_weights import DTYPE, LayerWeights, StackedWeights
from streamstage.model.mamba import MambaCache
from streamstage.model.stack import StackState
from streamstage.model.stager import StagingNet

_MINUS_SQRT_HALF = np.float32(-np.sqrt(0.5))
TORCH_DECAY_ROWS = 4
"""From this many streams in a step on, the SSM decays are computed by torch (measured faster there)."""
_EXP_SAFE = 700.0
"""Below this logit bound, ``exp`` cannot overflow in float64 and softmax needs no shift by the maximum."""


class _Scratch:
    """Intermediate buffers for ``rows`` streams of ``members`` networks, reused by every layer and step.

    Everything is (members, rows, ...): elementwise passes run over all members at once. ``t_*`` are torch
    views of the same memory, for the operators torch does faster.
    """

    def __init__(self, rows: int, weights: StackedWeights, n_stages: int) -> None:
        first = weights.layers[0]
        members, d_state, d_inner = first.a.shape[0], first.a.shape[2], first.a.shape[3]
        d_model, dbc_width, dt_rank = weights.embed2_w.shape[1], first.w_x.shape[2], first.w_dt.shape[1]

        def buffer(*shape: int) -> np.ndarray:
            return np.zeros(shape, dtype=DTYPE)

        self.hidden = buffer(rows, members * d_model)
        self.hidden_by_member = self.hidden.reshape(rows, members, d_model).transpose(1, 0, 2)
        self.cdf = buffer(rows, members * d_model)
        self.embed_b = np.tile(weights.embed_b, (rows, 1))  # same shapes: NumPy's fast path
        self.residual = buffer(members, rows, d_model + 1)
        self.mixed = buffer(members, rows, d_model + 1)
        self.normed = buffer(members, rows, d_model + 1)
        self.square_sum = buffer(members, rows)
        self.scale = self.square_sum[..., None]
        self.normed_xz = self.normed[None]
        self.taps = buffer(len(first.conv_w), members, rows, d_inner)
        self.taps_flat = self.taps.reshape(len(self.taps), -1)
        self.tap_sum = np.ones((1, len(self.taps)), dtype=DTYPE)
        self.xc = buffer(members, rows, d_inner)
        self.xc_flat = self.xc.reshape(1, -1)
        self.dbc = buffer(members, rows, dbc_width)
        self.delta = buffer(members, rows, d_inner)
        self.dx = buffer(members, rows, d_inner)
        self.y = buffer(members, rows, 1, d_inner)
        self.grid = buffer(members, rows, d_state, d_inner)
        self.logits = buffer(members, rows, n_stages)
        self.exps = np.zeros((members, rows, n_stages))
        self.sums = np.zeros((members, rows, 1))
        self.exps_flat, self.sums_flat = self.exps.reshape(-1, n_stages), self.sums.reshape(-1, 1)
        self.mean_weights = np.full((n_stages, 1), float(members))  # sums x M: the mean over members
        # The decays exp(delta A): from a few streams on, torch's broadcast multiply and exp2 (on A log2 e)
        # are faster; below, NumPy's multiply and exp.
        self.torch_decay = rows >= TORCH_DECAY_ROWS
        self.t_grid = torch.from_numpy(self.grid)
        self.decay_a = [torch.from_numpy(w.a_log2e) if self.torch_decay else w.a for w in weights.layers]
        self.t_cdf, self.t_xc, self.t_delta = map(torch.from_numpy, (self.cdf, self.xc, self.delta))
        # Views, made once: slicing costs as much as a small operator.
        self.delta_rows = self.delta[:, :, None]
        self.t_delta_rows = self.t_delta[:, :, None]
        self.t_dx = torch.from_numpy(self.dx)[:, :, None]
        self.dt = self.dbc[..., :dt_rank]
        self.t_b = torch.from_numpy(self.dbc)[..., dt_rank : dt_rank + d_state, None]  # strided
        self.c_rows = self.dbc[..., None, dt_rank + d_state :]
        self.y_rows = self.y[:, :, 0]
        self.t_y = torch.from_numpy(self.y_rows)


class _LayerState:
    """One layer's state for some streams, as views of the stepper's arrays (updated in place).

    ``history`` (d_conv + 2, members, streams, di): a row of ones for the conv bias, the last ``d_conv`` x
    outputs of ``in_proj`` (row 1, the oldest, rolls out at the next step), and the newest z. ``in_proj``
    writes its x and z straight into the last two rows, and every pass runs over contiguous rows.
    ``ssm`` (members, streams, d_state, di).
    """

    def __init__(self, history: np.ndarray, ssm: np.ndarray) -> None:
        d_conv = len(history) - 2
        self.ssm, self.ssm_t = ssm, torch.from_numpy(ssm)
        self.roll_to, self.roll_from = history[1:d_conv], history[2 : d_conv + 1]
        self.conv_inputs = history[: d_conv + 1]
        self.xz = history[d_conv:]
        self.z = history[d_conv + 1]
        self.t_z = torch.from_numpy(self.z)


class FastStepper:
    """A batch of streams stepped through a staging model one epoch at a time, in NumPy.

    ``net`` is a :class:`StagingNet` or an :class:`EnsembleNet` (all its members step together). Holds the
    recurrent state of ``batch_size`` streams. :meth:`step` advances all of them and returns what the
    reference ``step`` returns (logits; an ensemble's ``log`` of the mean probability),
    :meth:`probabilities` the same as stage probabilities, :meth:`step_streams` only some streams (nights
    of different lengths evaluated together), :meth:`run` a whole sequence; :meth:`to_stack_state` and
    :meth:`load_stack_state` exchange the state with the reference.
    """

    def __init__(self, net: StagingNet | EnsembleNet, batch_size: int = 1) -> None:
        if batch_size < 1:
            raise ModelError(f"FastStepper needs batch_size >= 1, got {batch_size}.")
        members = networks(net)
        config = members[0].config
        self._weights = StackedWeights.of(members)
        self.batch_size = batch_size
        self.n_members = len(members)
        self.n_channels = len(config.channels)
        self.n_features = config.n_features
        self.n_stages = len(config.stages)
        self.d_conv = config.d_conv
        first = self._weights.layers[0]
        self.d_state, self.d_inner = first.a.shape[2], first.a.shape[3]
        self._shift_free_softmax = self._weights.logit_bound < _EXP_SAFE
        self._scratch: dict[int, _Scratch] = {}
        n_layers, shape = len(self._weights.layers), (self.n_members, batch_size)
        self._history = np.zeros((n_layers, self.d_conv + 2, *shape, self.d_inner), dtype=DTYPE)
        self._history[:, 0] = 1.0
        self._ssm_t = torch.zeros((n_layers, *shape, self.d_state, self.d_inner), dtype=torch.float32)
        self._ssm = self._ssm_t.numpy()  # the same memory; torch does the fused outer-product update
        self._whole = self._layer_states(slice(None))

    @classmethod
    def from_net(cls, net: StagingNet | EnsembleNet, batch_size: int = 1) -> FastStepper:
        """A stepper with ``net``'s weights (copied: later training does not reach it), empty history."""
        return cls(net, batch_size)

    @property
    def n_layers(self) -> int:
        """Layers of one member."""
        return len(self._weights.layers)

    @property
    def nbytes(self) -> int:
        """The carried state's size, counted as :attr:`StackState.nbytes` counts it."""
        per_layer = self.batch_size * self.d_inner * (self.d_conv - 1 + self.d_state) * 4
        return self.n_members * self.n_layers * per_layer

    def reset(self) -> None:
        """Every stream back to an empty history."""
        self._history[:, 1:] = 0.0
        self._ssm[...] = 0.0

    def step(self, inputs: np.ndarray) -> np.ndarray:
        """One epoch of every stream: ``(batch_size, n_channels, n_features)`` -> ``(batch_size, n_stages)``
        float32, what the reference step returns; a new array."""
        return self._outputs(self._advance(self._checked(inputs, self.batch_size), self._whole))

    def probabilities(self, inputs: np.ndarray) -> np.ndarray:
        """One epoch of every stream -> stage probabilities ``(batch_size, n_stages)``, float64, each row
        summing to 1 (an ensemble's: the mean of its members'); a new array. What live staging runs."""
        return self._mean_probabilities(self._advance(self._checked(inputs, self.batch_size), self._whole))

    def step_streams(self, inputs: np.ndarray, streams: Sequence[int] | np.ndarray) -> np.ndarray:
        """One epoch of some streams only, the others keeping their state: inputs ``(len(streams), ...)``.

        ``streams`` are distinct indices into the batch. A leading range ``0..k-1`` steps in place, without
        copying state: evaluate nights longest first (as :meth:`stage_nights` does).
        """
        return self._outputs(self._advance_streams(inputs, streams))

    def probabilities_streams(self, inputs: np.ndarray, streams: Sequence[int] | np.ndarray) -> np.ndarray:
        """:meth:`step_streams` as stage probabilities (what :meth:`probabilities` gives those streams):
        the beds of a lab that are due together."""
        return self._mean_probabilities(self._advance_streams(inputs, streams)).copy()

    def _advance_streams(self, inputs: np.ndarray, streams: Sequence[int] | np.ndarray) -> _Scratch:
        index = np.asarray(streams, dtype=np.intp).reshape(-1)
        x = self._checked(inputs, len(index))
        if len(np.unique(index)) != len(index) or not np.all((index >= 0) & (index < self.batch_size)):
            raise ModelError(
                f"streams must be distinct indices below batch_size={self.batch_size}, got {index.tolist()}."
            )
        k = len(index)
        if np.array_equal(index, np.arange(k)):
            return self._advance(x, self._layer_states(slice(0, k)))
        history, ssm = self._history[:, :, :, index], self._ssm[:, :, index]  # copies, written back
        states = [_LayerState(h, s) for h, s in zip(history, ssm, strict=True)]
        scratch = self._advance(x, states)
        self._history[:, :, :, index], self._ssm[:, :, index] = history, ssm
        return scratch

    def run(self, sequence: np.ndarray) -> np.ndarray:
        """Many epochs: ``(batch_size, n_epochs, n_channels, n_features)`` -> ``(batch_size, n_epochs,
        n_stages)``; the same numbers as that many :meth:`step` calls."""
        sequence = np.asarray(sequence, dtype=DTYPE)
        if sequence.ndim != 4:
            raise ModelError(
                f"run takes (batch, n_epochs, n_channels, n_features), got shape {sequence.shape}."
            )
        outputs = np.empty((sequence.shape[0], sequence.shape[1], self.n_stages), dtype=DTYPE)
        for epoch in range(sequence.shape[1]):
            outputs[:, epoch] = self.step(sequence[:, epoch])
        return outputs

    def stage_nights(self, nights: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Outputs ``(n_epochs_i, n_stages)`` (as :meth:`step`'s) of whole nights ``(n_epochs_i,
        n_channels, n_features)``, stepped together from an empty history (at most ``batch_size`` nights;
        this resets the state)."""
        if len(nights) > self.batch_size:
            raise ModelError(f"{len(nights)} nights do not fit a stepper of batch_size={self.batch_size}.")
        self.reset()
        order = sorted(range(len(nights)), key=lambda i: -len(nights[i]))  # longest first: a prefix steps
        lengths = [len(nights[i]) for i in order]
        outputs = [np.empty((n, self.n_stages), dtype=DTYPE) for n in lengths]
        for epoch in range(lengths[0] if lengths else 0):
            active = sum(n > epoch for n in lengths)
            rows = self.step_streams(
                np.stack([nights[order[j]][epoch] for j in range(active)]), range(active)
            )
            for j in range(active):
                outputs[j][epoch] = rows[j]
        result: list[np.ndarray] = [np.empty(0)] * len(nights)
        for j, i in enumerate(order):
            result[i] = outputs[j]
        return result

    def to_stack_state(self, streams: slice = slice(None)) -> StackState:
        """The state as the reference step carries it (copies: stepping on leaves it as it is); ``streams``
        picks some streams of the batch (one bed of a lab: ``slice(i, i + 1)``)."""
        history = self._history[:, 2 : self.d_conv + 1, :, streams]  # (layer, tap, member, batch, di)
        return StackState(
            tuple(
                MambaCache(
                    torch.from_numpy(history[layer, :, member].transpose(1, 2, 0).copy()),
                    torch.from_numpy(self._ssm[layer, member, streams].transpose(0, 2, 1).copy()),
                )
                for member in range(self.n_members)
                for layer in range(self.n_layers)
            )
        )

    def load_stack_state(self, state: StackState, streams: slice = slice(None)) -> None:
        """Continue from a state of the reference step (or :meth:`to_stack_state`), same model and batch
        (or the streams ``streams`` of the batch, the others keeping theirs)."""
        rows = len(range(*streams.indices(self.batch_size)))
        expected = ((rows, self.d_inner, self.d_conv - 1), (rows, self.d_inner, self.d_state))
        shapes = [(tuple(c.conv_state.shape), tuple(c.ssm_state.shape)) for c in state.layers]
        if shapes != [expected] * (self.n_members * self.n_layers):
            raise ModelError(
                f"the state has layer shapes {shapes} but this stepper needs "
                f"{self.n_members * self.n_layers} x {expected}; load a state of this model with this "
                "batch size."
            )
        for i, cache in enumerate(state.layers):
            member, layer = divmod(i, self.n_layers)
            taps = self._history[layer, :, member, streams]
            taps[1] = 0.0
            taps[2 : self.d_conv + 1] = cache.conv_state.detach().cpu().numpy().transpose(2, 0, 1)
            self._ssm[layer, member, streams] = cache.ssm_state.detach().cpu().numpy().transpose(0, 2, 1)

    def _layer_states(self, streams: slice) -> list[_LayerState]:
        return [
            _LayerState(h[:, :, streams], s[:, streams])
            for h, s in zip(self._history, self._ssm, strict=True)
        ]

    def _checked(self, inputs: np.ndarray, rows: int) -> np.ndarray:
        x = np.asarray(inputs, dtype=DTYPE)
        if x.shape != (rows, self.n_channels, self.n_features):
            raise ModelError(
                f"expected inputs of shape ({rows}, {self.n_channels}, {self.n_features}), got {x.shape}."
            )
        return x.reshape(rows, self.n_channels * self.n_features)

    def _buffers(self, rows: int) -> _Scratch:
        if rows not in self._scratch:
            self._scratch[rows] = _Scratch(rows, self._weights, self.n_stages)
        return self._scratch[rows]

    def _advance(self, x: np.ndarray, states: Sequence[_LayerState]) -> _Scratch:
        """The whole step for ``len(x)`` streams of every member; each layer's state moves on in place.
        Returns the scratch, whose ``logits`` (members, streams, n_stages) hold the members' logits."""
        w, s = self._weights, self._buffers(len(x))
        h = s.hidden
        np.dot(x, w.embed_w, h)  # every member's first layer in one matmul: (streams, members x d)
        np.add(h, s.embed_b, h)
        np.multiply(h, _MINUS_SQRT_HALF, s.cdf)  # exact GELU: x erfc(-x / √2) / 2, the ½ folded
        torch.erfc(s.t_cdf, out=s.t_cdf)
        np.multiply(h, s.cdf, h)
        np.matmul(s.hidden_by_member, w.embed2_w, s.residual)
        np.add(s.residual, w.embed2_b, s.residual)
        for i, layer in enumerate(w.layers):
            _layer_step(layer, s, s.decay_a[i], states[i])
        _rms_scale(s)
        np.matmul(s.residual, w.head_w, s.logits)
        np.divide(s.logits, s.scale, s.logits)
        np.add(s.logits, w.head_b, s.logits)
        return s

    def _mean_probabilities(self, s: _Scratch) -> np.ndarray:
        """The mean over members of each member's softmax, in float64; a new array."""
        exps = s.exps
        if self._shift_free_softmax:
            np.exp(s.logits, exps)
        else:
            np.subtract(s.logits, s.logits.max(axis=-1, keepdims=True), exps)
            np.exp(exps, exps)
        np.dot(s.exps_flat, s.mean_weights, s.sums_flat)  # each member's sum, times M
        np.divide(exps, s.sums, exps)
        return np.add.reduce(exps, axis=0)

    def _outputs(self, s: _Scratch) -> np.ndarray:
        """What the reference step returns: one network's logits, or the log of an ensemble's mean
        probability (``mean_probability_logits``)."""
        if self.n_members == 1:
            return s.logits[0].copy()
        probs = self._mean_probabilities(s)
        return np.log(np.maximum(probs, np.finfo(DTYPE).tiny)).astype(DTYPE)


def _rms_scale(s: _Scratch) -> None:
    """``sqrt(Σ residual² + d·eps)`` per stream into ``s.scale`` (the constant column carries ``d·eps``)."""
    np.vecdot(s.residual, s.residual, out=s.square_sum)
    np.sqrt(s.square_sum, s.square_sum)


def _layer_step(w: LayerWeights, s: _Scratch, decay_a: np.ndarray | torch.Tensor, state: _LayerState) -> None:
    """``residual += mixer(norm(residual))`` for one layer of every member; its state moves on in place."""
    xc, delta = s.xc, s.delta
    matmul, multiply, add = np.matmul, np.multiply, np.add  # local names: ~1 µs of lookups a step
    _rms_scale(s)
    np.divide(s.residual, s.scale, s.normed)  # (the narrower side of in_proj)
    np.copyto(state.roll_to, state.roll_from)  # the conv history moves on a row...
    matmul(s.normed_xz, w.w_in, state.xz)  # ...and in_proj writes the newest x and z
    multiply(state.conv_inputs, w.conv_w, s.taps)  # causal depthwise conv (+ bias), then SiLU
    np.dot(s.tap_sum, s.taps_flat, s.xc_flat)
    F.silu(s.t_xc, inplace=True)
    matmul(xc, w.w_x, s.dbc)  # (dt, B, C), then delta = softplus(dt_proj(dt))
    matmul(s.dt, w.w_dt, delta)
    add(delta, w.dt_bias, delta)
    F.softplus(s.t_delta, 1.0, 20.0, out=s.t_delta)
    grid = s.grid  # h = exp(delta A) h + (delta x) B, over (members, streams, d_state, d_inner)
    if s.torch_decay:
        torch.mul(decay_a, s.t_delta_rows, out=s.t_grid)
        torch.exp2(s.t_grid, out=s.t_grid)
    else:
        multiply(decay_a, s.delta_rows, grid)
        np.exp(grid, grid)
    multiply(state.ssm, grid, state.ssm)
    multiply(delta, xc, s.dx)
    state.ssm_t.addcmul_(s.t_b, s.t_dx)
    matmul(s.c_rows, state.ssm, s.y)  # y = C h + D x
    multiply(xc, w.d_skip, s.dx)
    add(s.y_rows, s.dx, s.y_rows)
    F.silu(state.t_z, inplace=True)  # gated by silu(z)
    multiply(s.y_rows, state.z, s.y_rows)
    matmul(s.y_rows, w.w_out, s.mixed)
    add(s.residual, s.mixed, s.residual)
