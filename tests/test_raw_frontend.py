"""The raw front end streams: any chunking equals one forward pass, its state has a fixed size, a state saved
mid-epoch continues identically, and a peek moves nothing."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from streamstage.errors import ResumeError
from streamstage.features import epoch_features
from streamstage.model.raw_frontend import FrontEndConfig, FrontEndState, RawFrontEnd
from streamstage.sim import SyntheticEEG
from streamstage.state_io import state_from_bytes, state_to_bytes

SMALL = FrontEndConfig(d_model=8, n_layers=1, d_state=4, n_extra=2)
EPOCH = SMALL.epoch_samples


@pytest.fixture(scope="module")
def front_end() -> RawFrontEnd:
    torch.manual_seed(0)
    front_end = RawFrontEnd(SMALL).eval()
    with torch.no_grad():  # a live correction head, so the Mamba path's part in the output is tested too
        front_end.correction.weight.normal_(0.0, 0.1)
    return front_end


@pytest.fixture(scope="module")
def samples() -> torch.Tensor:
    """Two streams of 4 epochs and a bit, at the model rate."""
    night = SyntheticEEG([0, 2, 3, 4, 1], 100.0, seed=5, montage="muse").generate()[:2]
    return torch.from_numpy(night[:, : 4 * EPOCH + 777].astype(np.float32))


@pytest.fixture(scope="module")
def one_pass(front_end: RawFrontEnd, samples: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return front_end(samples)


@pytest.fixture(scope="module")
def stepped_once(front_end: RawFrontEnd, samples: torch.Tensor) -> torch.Tensor:
    return front_end.step(samples, front_end.init_state(len(samples)))[0]


def _stepped(
    front_end: RawFrontEnd, samples: torch.Tensor, sizes: list[int]
) -> tuple[torch.Tensor, FrontEndState]:
    state, outputs, start = front_end.init_state(len(samples)), [], 0
    for size in [*sizes, samples.shape[1]]:
        features, state = front_end.step(samples[:, start : start + size], state)
        outputs.append(features)
        start += size
    return torch.cat(outputs, dim=1), state


def test_forward_gives_every_complete_epoch(one_pass: torch.Tensor) -> None:
    assert one_pass.shape == (2, 4, SMALL.n_outputs)
    relative = one_pass[..., 5:10]
    assert torch.allclose(relative.sum(-1), torch.ones(2, 4))


@settings(max_examples=12, deadline=None)
@given(st.lists(st.integers(0, 4000), max_size=12))
def test_any_chunking_matches_one_forward_pass(front_end, samples, one_pass, stepped_once, sizes) -> None:
    stepped, _ = _stepped(front_end, samples, sizes)
    assert torch.allclose(stepped, one_pass, atol=2e-5, rtol=1e-5)
    assert torch.equal(stepped, stepped_once)  # stepping itself is bitwise chunk-invariant


def test_single_sample_chunks_match(front_end, samples) -> None:
    head = samples[:, : EPOCH + 60]
    with torch.no_grad():
        whole = front_end(head)
    stepped, state = _stepped(front_end, head, [1] * (EPOCH + 59))
    assert torch.allclose(stepped, whole, atol=2e-5, rtol=1e-5)
    assert state.phase == 60


def test_whole_night_in_one_step_matches(front_end, samples, one_pass) -> None:
    stepped, _ = front_end.step(samples, front_end.init_state(2))
    assert torch.allclose(stepped, one_pass, atol=2e-5, rtol=1e-5)


def test_state_size_after_ten_samples_equals_after_a_million(front_end) -> None:
    rng = np.random.default_rng(1)
    state = front_end.init_state(1)
    _, early = front_end.step(torch.from_numpy(rng.normal(0, 20, (1, 10)).astype(np.float32)), state)
    late = front_end.init_state(1)
    for _ in range(100):
        _, late = front_end.step(torch.from_numpy(rng.normal(0, 20, (1, 10_000)).astype(np.float32)), late)
    assert late.nbytes == early.nbytes

    def shapes(state: FrontEndState) -> dict:
        saved = state_from_bytes(state_to_bytes(state.to_dict()))
        return {k: np.shape(v) for k, v in saved.items() if k != "mamba"} | {
            k: tuple(v.shape) for k, v in saved["mamba"].items()
        }

    assert shapes(late) == shapes(early)


def test_state_saved_mid_epoch_continues_identically(front_end, samples) -> None:
    cut = EPOCH + 1234
    _, state = front_end.step(samples[:, :cut], front_end.init_state(2))
    restored = front_end.load_state(state_from_bytes(state_to_bytes(state.to_dict())))
    assert restored.phase == cut - EPOCH
    continued, _ = front_end.step(samples[:, cut:], restored)
    original, _ = front_end.step(samples[:, cut:], state)
    assert torch.equal(continued, original)


def test_peek_reads_the_epoch_in_progress_without_moving_the_state(front_end, samples) -> None:
    _, state = front_end.step(samples[:, : EPOCH - 1], front_end.init_state(2))
    before = {k: v.clone() for k, v in state.to_dict().items() if isinstance(v, torch.Tensor)}
    peeked = front_end.peek(state)
    assert all(torch.equal(state.to_dict()[k], v) for k, v in before.items())
    completed, _ = front_end.step(samples[:, EPOCH - 1 : EPOCH], state)
    # one sample short of the end the peek has 13 of the epoch's 14 patches: near its final features
    assert torch.allclose(peeked[:, :5], completed[:, 0, :5], atol=0.5)
    assert torch.allclose(peeked[:, 5:], completed[:, 0, 5:], atol=0.05)


def test_peek_before_the_first_segment_is_none(front_end, samples) -> None:
    _, state = front_end.step(samples[:, :300], front_end.init_state(2))
    assert front_end.peek(state) is None


def test_a_fresh_front_end_gives_the_recipe_features() -> None:
    front_end = RawFrontEnd(FrontEndConfig(n_extra=0))
    night = SyntheticEEG([0, 2, 3, 4], 100.0, seed=2, artifact_rate_per_h=60).generate()[0]
    with torch.no_grad():
        features = front_end(torch.from_numpy(night)[None])[0].numpy()
    expected = epoch_features(night.reshape(4, EPOCH).astype(np.float64))
    np.testing.assert_allclose(features, expected, atol=2e-4, rtol=1e-4)


def test_a_foreign_state_is_refused(front_end) -> None:
    other = RawFrontEnd(FrontEndConfig(d_model=8, n_layers=1, d_state=4, n_extra=3))  # a wider path sum
    with pytest.raises(ResumeError, match="another front end"):
        front_end.load_state(other.init_state(1).to_dict())
