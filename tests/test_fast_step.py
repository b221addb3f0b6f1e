"""The NumPy fast step against the PyTorch reference step: one network and the whole shipped ensemble,
single stream, batched, resumed, other sizes, and bit-identical outputs however a night is cut into calls."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch

from streamstage.errors import ModelError
from streamstage.model.checkpoint import load_model
from streamstage.model.ensemble import EnsembleNet, networks
from streamstage.model.fast_step import FastStepper
from streamstage.model.stack import StackState
from streamstage.model.stager import StagerConfig, StagingNet

TOL = 1e-5


@functools.cache
def _ensemble() -> EnsembleNet:
    """The shipped default model: an ensemble, whose members the stepper steps together."""
    net = load_model().net
    assert isinstance(net, EnsembleNet)
    return net


def _default() -> StagingNet:
    """The shipped default's first network, stepped alone."""
    return networks(_ensemble())[0]


def _model(kind: str) -> StagingNet | EnsembleNet:
    return _ensemble() if kind == "ensemble" else _default()


@functools.cache
def _random_net(
    channels: int, d_model: int, n_layers: int, d_state: int, d_conv: int, seed: int
) -> StagingNet:
    torch.manual_seed(seed)
    config = StagerConfig(
        channels=tuple(f"C{i}" for i in range(channels)),
        d_model=d_model,
        n_layers=n_layers,
        d_state=d_state,
        d_conv=d_conv,
    )
    net = StagingNet(config)
    with torch.no_grad():  # non-trivial norms, skips and decays, so every term is exercised
        for name, param in net.named_parameters():
            if name.endswith(("norm.weight", "norm_f.weight", "mixer.D")):
                param.uniform_(0.5, 1.5)
            elif name.endswith("A_log"):
                param.add_(torch.randn_like(param) * 0.3)
    return net.eval()


def _features(batch: int, n_epochs: int, net: StagingNet | EnsembleNet, seed: int = 0) -> np.ndarray:
    shape = (batch, n_epochs, len(net.config.channels), net.config.n_features)
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _reference(
    net: StagingNet | EnsembleNet, features: np.ndarray, state: StackState | None = None
) -> tuple[np.ndarray, StackState]:
    """Outputs of the reference ``step`` epoch by epoch (its own chunking does not matter: tested
    elsewhere): a network's logits, an ensemble's log mean probability."""
    state = net.init_state(features.shape[0]) if state is None else state
    outputs = []
    for epoch in range(features.shape[1]):
        logits, state = net.step(torch.from_numpy(features[:, epoch : epoch + 1]), state)
        outputs.append(logits[:, 0].numpy())
    return np.stack(outputs, axis=1), state


@pytest.mark.parametrize("kind", ["network", "ensemble"])
@pytest.mark.parametrize("batch", [1, 7])
def test_default_model_equals_reference(kind: str, batch: int) -> None:
    net = _model(kind)
    features = _features(batch, 60, net)
    expected, state = _reference(net, features)
    stepper = FastStepper.from_net(net, batch)
    got = stepper.run(features)
    np.testing.assert_allclose(got, expected, atol=TOL, rtol=TOL)
    for ours, theirs in zip(stepper.to_stack_state().layers, state.layers, strict=True):
        np.testing.assert_allclose(ours.conv_state.numpy(), theirs.conv_state.numpy(), atol=TOL, rtol=TOL)
        np.testing.assert_allclose(ours.ssm_state.numpy(), theirs.ssm_state.numpy(), atol=TOL, rtol=TOL)


@pytest.mark.parametrize(
    ("channels", "d_model", "n_layers", "d_state", "d_conv"),
    [(1, 16, 1, 4, 2), (2, 32, 3, 8, 4), (3, 48, 2, 16, 3)],
)
def test_random_models_of_other_sizes_equal_reference(
    channels: int, d_model: int, n_layers: int, d_state: int, d_conv: int
) -> None:
    net = _random_net(channels, d_model, n_layers, d_state, d_conv, seed=d_model)
    features = 3 * _features(3, 40, net, seed=1)
    expected, _ = _reference(net, features)
    np.testing.assert_allclose(FastStepper.from_net(net, 3).run(features), expected, atol=TOL, rtol=TOL)


def test_probabilities_are_the_mean_of_the_members_reference_softmax() -> None:
    """What live staging reads: float64 rows summing to 1, each the mean of the members' probabilities."""
    net = _ensemble()
    features = _features(3, 20, net, seed=5)
    stepper = FastStepper.from_net(net, 3)
    members = [_reference(member, features)[0] for member in networks(net)]
    expected = np.mean([torch.softmax(torch.from_numpy(m), dim=-1).numpy() for m in members], axis=0)
    got = np.stack([stepper.probabilities(features[:, epoch]) for epoch in range(20)], axis=1)
    assert got.dtype == np.float64
    np.testing.assert_allclose(got.sum(axis=-1), 1.0, atol=1e-12)
    np.testing.assert_allclose(got, expected, atol=TOL)


def test_softmax_shifts_by_the_maximum_where_logits_could_overflow() -> None:
    """A head whose logits are not bounded below exp's overflow takes the shifted softmax, same result."""
    net = _random_net(1, 16, 1, 4, 2, seed=9)
    with torch.no_grad():
        net.head.weight.mul_(2000.0)
    features = _features(2, 10, net, seed=6)
    expected, _ = _reference(net, features)
    stepper = FastStepper.from_net(net, 2)
    got = np.stack([stepper.probabilities(features[:, epoch]) for epoch in range(10)], axis=1)
    reference = torch.softmax(torch.from_numpy(expected).double(), dim=-1).numpy()
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got, reference, atol=TOL)


@pytest.mark.parametrize("kind", ["network", "ensemble"])
def test_resume_through_stack_state_both_ways(kind: str) -> None:
    """A state saved by either implementation (as ``state.npz`` holds it) continues in the other."""
    net = _model(kind)
    features = _features(2, 50, net, seed=2)
    expected, _ = _reference(net, features)
    _, reference_state = _reference(net, features[:, :20])
    stepper = FastStepper.from_net(net, 2)
    stepper.load_stack_state(net.load_state(reference_state.to_dict()))
    np.testing.assert_allclose(stepper.run(features[:, 20:35]), expected[:, 20:35], atol=TOL, rtol=TOL)
    saved = {key: value.numpy() for key, value in stepper.to_stack_state().to_dict().items()}
    resumed, _ = _reference(net, features[:, 35:], net.load_state(saved))
    np.testing.assert_allclose(resumed, expected[:, 35:], atol=TOL, rtol=TOL)


@pytest.mark.parametrize("kind", ["network", "ensemble"])
def test_bit_identical_however_the_night_is_cut(kind: str) -> None:
    net = _model(kind)
    features = _features(3, 45, net, seed=3)
    whole = FastStepper.from_net(net, 3).run(features)
    pieces, stepper = [], FastStepper.from_net(net, 3)
    for start, stop in [(0, 1), (1, 17), (17, 30), (30, 45)]:
        pieces.append(stepper.run(features[:, start:stop]))
        resumed = FastStepper.from_net(net, 3)  # every piece in a fresh stepper, from the exported state
        resumed.load_stack_state(stepper.to_stack_state())
        stepper = resumed
    np.testing.assert_array_equal(np.concatenate(pieces, axis=1), whole)


@pytest.mark.parametrize("kind", ["network", "ensemble"])
def test_step_streams_moves_only_those_streams(kind: str) -> None:
    net = _model(kind)
    features = _features(4, 12, net, seed=4)
    alone = [FastStepper.from_net(net, 1).run(features[i : i + 1])[0] for i in range(4)]
    stepper = FastStepper.from_net(net, 4)
    got: list[list[np.ndarray]] = [[] for _ in range(4)]
    counts = [0] * 4
    schedule = [[3, 1], [0, 1, 2], [2], [0, 1, 2, 3], [1, 3, 0]] * 6
    for streams in schedule:
        live = [i for i in streams if counts[i] < 12]
        if not live:
            continue
        inputs = np.stack([features[i, counts[i]] for i in live])
        for i, row in zip(live, stepper.step_streams(inputs, live), strict=True):
            got[i].append(row)
            counts[i] += 1
    for i in range(4):
        np.testing.assert_allclose(np.stack(got[i]), alone[i][: counts[i]], atol=TOL, rtol=TOL)


@pytest.mark.parametrize("kind", ["network", "ensemble"])
def test_stage_nights_of_different_lengths(kind: str) -> None:
    net = _model(kind)
    nights = [_features(1, n, net, seed=n)[0] for n in (5, 30, 12)]
    staged = FastStepper.from_net(net, 4).stage_nights(nights)
    for night, logits in zip(nights, staged, strict=True):
        expected, _ = _reference(net, night[None])
        np.testing.assert_allclose(logits, expected[0], atol=TOL, rtol=TOL)


def test_misuse_is_refused_clearly() -> None:
    net = _default()
    stepper = FastStepper.from_net(net, 2)
    with pytest.raises(ModelError, match="expected inputs of shape"):
        stepper.step(np.zeros((1, 1, 10), np.float32))
    with pytest.raises(ModelError, match="distinct indices"):
        stepper.step_streams(np.zeros((2, 1, 10), np.float32), [1, 1])
    with pytest.raises(ModelError, match="batch size"):
        stepper.load_stack_state(net.init_state(3))
    with pytest.raises(ModelError, match="batch size"):  # one member's state is not the ensemble's
        FastStepper.from_net(_ensemble(), 2).load_stack_state(net.init_state(2))
    bidirectional = StagingNet(StagerConfig(bidirectional=True))
    with pytest.raises(ModelError, match="bidirectional"):
        FastStepper.from_net(bidirectional)
