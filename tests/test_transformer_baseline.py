"""The causal Transformer baseline: causal, and both streaming modes equal the full forward."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from benchmarks.transformer import (
    CausalTransformer,
    KVCacheStepper,
    ReattendStepper,
    count_parameters,
    sinusoidal_positions,
    transformer_matching,
)
from streamstage.errors import ConfigError, ResumeError

N_FEATURES = 10


@pytest.fixture
def model() -> CausalTransformer:
    torch.manual_seed(0)
    return CausalTransformer(N_FEATURES, d_model=32, n_layers=2, n_heads=4, d_mlp=48).eval()


@pytest.fixture
def night() -> torch.Tensor:
    return torch.randn(2, 40, N_FEATURES, generator=torch.Generator().manual_seed(1))


def _stream(stepper: ReattendStepper | KVCacheStepper, seq: torch.Tensor) -> torch.Tensor:
    return torch.stack([stepper.step(seq[:, t]) for t in range(seq.shape[1])], dim=1)


def test_forward_gives_five_logits_per_epoch(model: CausalTransformer, night: torch.Tensor) -> None:
    assert model(night).shape == (2, 40, 5)


def test_changing_a_future_epoch_leaves_past_outputs_alone(
    model: CausalTransformer, night: torch.Tensor
) -> None:
    changed = night.clone()
    changed[:, 25] += 3.0
    with torch.no_grad():
        before, after = model(night), model(changed)
    torch.testing.assert_close(after[:, :25], before[:, :25], rtol=0, atol=1e-6)
    assert (after[:, 25:] - before[:, 25:]).abs().amax() > 1e-3


@pytest.mark.parametrize("stepper_type", [ReattendStepper, KVCacheStepper])
def test_streaming_equals_the_full_causal_forward(
    model: CausalTransformer, night: torch.Tensor, stepper_type: type
) -> None:
    with torch.no_grad():
        full = model(night)
    streamed = _stream(stepper_type(model), night)
    assert (streamed - full).abs().max() < 1e-4


@pytest.mark.parametrize("stepper_type", [ReattendStepper, KVCacheStepper])
def test_a_stepper_resumes_from_its_saved_state(
    model: CausalTransformer, night: torch.Tensor, stepper_type: type
) -> None:
    stepper = stepper_type(model)
    for t in (0, 15):  # resume from a fresh stepper, then from mid-night
        if t:
            _stream(stepper, night[:, :t])
        state = stepper.state_dict()
        assert all(isinstance(value, (np.ndarray, int, list)) for value in state.values())
        resumed = stepper_type(model)
        resumed.load_state_dict(state)
        assert resumed.cache_nbytes() == stepper.cache_nbytes()
    torch.testing.assert_close(_stream(resumed, night[:, 15:]), _stream(stepper, night[:, 15:]))


def test_a_cache_from_another_depth_is_refused(model: CausalTransformer, night: torch.Tensor) -> None:
    stepper = KVCacheStepper(model)
    stepper.step(night[:, 0])
    deeper = KVCacheStepper(CausalTransformer(N_FEATURES, d_model=32, n_layers=3, n_heads=4, d_mlp=48))
    with pytest.raises(ResumeError):
        deeper.load_state_dict(stepper.state_dict())


def test_the_kv_cache_grows_linearly_with_the_night(model: CausalTransformer, night: torch.Tensor) -> None:
    stepper = KVCacheStepper(model)
    assert stepper.cache_nbytes() == 0
    sizes = []
    for t in range(12):
        stepper.step(night[:, t])
        sizes.append(stepper.cache_nbytes())
    per_epoch = 2 * len(model.blocks) * night.shape[0] * model.d_model * 4  # keys and values, float32
    assert sizes == [per_epoch * (t + 1) for t in range(12)]


def test_reattend_holds_only_the_feature_history(model: CausalTransformer, night: torch.Tensor) -> None:
    stepper = ReattendStepper(model)
    _stream(stepper, night[:, :7])
    assert stepper.cache_nbytes() == night.shape[0] * 7 * N_FEATURES * 4


def test_positions_stay_distinct_over_72_hours() -> None:
    encodings = sinusoidal_positions(torch.arange(8640), 64)
    assert encodings.shape == (8640, 64)
    assert torch.isfinite(encodings).all()
    steps = (encodings[1:] - encodings[:-1]).norm(dim=1)
    assert steps.min() > 0.1


def test_count_parameters_counts_weights_and_biases() -> None:
    assert count_parameters(nn.Linear(3, 4)) == 16
    assert count_parameters(nn.Sequential(nn.Linear(3, 4), nn.LayerNorm(4))) == 24


@pytest.mark.parametrize(
    ("params_target", "d_model", "n_layers"), [(20_000, 32, 2), (40_000, 64, 2), (90_000, 64, 4)]
)
def test_matching_lands_within_ten_percent_of_the_target(
    params_target: int, d_model: int, n_layers: int
) -> None:
    model = transformer_matching(params_target, d_model, n_layers, n_features=N_FEATURES)
    assert abs(count_parameters(model) - params_target) <= 0.1 * params_target
    assert len(model.blocks) == n_layers
    assert model.d_model == d_model


def test_matching_refuses_a_target_below_the_attention_alone() -> None:
    with pytest.raises(ConfigError):
        transformer_matching(5_000, 64, 4, n_features=N_FEATURES)


def test_heads_must_divide_the_width() -> None:
    with pytest.raises(ConfigError):
        CausalTransformer(N_FEATURES, d_model=30, n_heads=4)
