"""The residual Mamba stack as a streaming model: chunking, bounded state, resume, batched streams."""

from __future__ import annotations

import functools
import itertools

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from streamstage.errors import ConfigError, ModelError, ResumeError
from streamstage.model import MambaStack, StackState

TOL = 1e-5


@functools.cache
def _stack(norm: str = "rmsnorm", d_model: int = 8, n_layers: int = 2, seed: int = 0) -> MambaStack:
    torch.manual_seed(seed)
    model = MambaStack(d_model, n_layers, norm=norm)  # type: ignore[arg-type]
    with torch.no_grad():  # non-trivial norms and skips, so every term matters
        for name, param in model.named_parameters():
            if name.endswith(("norm.weight", "norm_f.weight", "mixer.D")):
                param.uniform_(0.5, 1.5)
    return model.eval()


def _inputs(batch: int, length: int, d_model: int = 8, seed: int = 0) -> torch.Tensor:
    return torch.randn(batch, length, d_model, generator=torch.Generator().manual_seed(seed))


def _stream(
    model: MambaStack, x: torch.Tensor, edges: list[int], state: StackState
) -> tuple[torch.Tensor, StackState]:
    outputs = []
    for start, stop in itertools.pairwise(edges):
        y, state = model.step(x[:, start:stop], state)
        outputs.append(y)
    return torch.cat(outputs, dim=1), state


def test_state_dict_uses_mamba_ssms_mixer_model_names() -> None:
    keys = set(_stack("layernorm").state_dict())
    assert {"layers.0.norm.weight", "layers.0.norm.bias", "layers.1.mixer.A_log", "norm_f.weight"} <= keys
    assert {"layers.0.mixer.in_proj.weight", "layers.1.mixer.out_proj.weight", "norm_f.bias"} <= keys
    assert not any(k.startswith("layers.2.") for k in keys)
    assert "layers.0.norm.bias" not in _stack("rmsnorm").state_dict()


@settings(max_examples=25, deadline=None)
@given(
    norm=st.sampled_from(["rmsnorm", "layernorm"]),
    length=st.integers(1, 120),
    cuts=st.lists(st.integers(0, 120), max_size=5),
    seed=st.integers(0, 2**16),
)
def test_forward_equals_step_over_any_chunking(norm: str, length: int, cuts: list[int], seed: int) -> None:
    model = _stack(norm)
    x = _inputs(2, length, seed=seed)
    edges = [0, *sorted(c for c in cuts if c <= length), length]
    with torch.no_grad():
        expected = model(x)
        chunked, _ = _stream(model, x, edges, model.init_state(2))
    torch.testing.assert_close(chunked, expected, rtol=0, atol=TOL)


def test_forward_equals_step_one_input_at_a_time() -> None:
    model = _stack()
    x = _inputs(3, 50, seed=1)
    state = model.init_state(3)
    outputs = []
    with torch.no_grad():
        expected = model(x)
        for t in range(x.shape[1]):
            y, state = model.step(x[:, t], state)  # (batch, d) in, (batch, d) out
            outputs.append(y)
    assert outputs[0].shape == (3, 8)
    torch.testing.assert_close(torch.stack(outputs, dim=1), expected, rtol=0, atol=TOL)


def test_state_size_does_not_grow_with_the_night() -> None:
    model = _stack(d_model=4, n_layers=1)
    state = model.init_state(1)
    with torch.no_grad():
        _, after_10 = model.step(_inputs(1, 10, 4, seed=2), state)
        after_100k = state
        for chunk in range(5):
            y, after_100k = model.step(_inputs(1, 20_000, 4, seed=chunk), after_100k)
    assert after_10.nbytes == after_100k.nbytes == state.nbytes > 0
    assert {k: v.shape for k, v in after_10.to_dict().items()} == {
        k: v.shape for k, v in after_100k.to_dict().items()
    }
    assert torch.isfinite(y).all() and all(torch.isfinite(t).all() for t in after_100k.to_dict().values())


def test_state_saved_mid_night_resumes_identically_in_a_new_model(tmp_path) -> None:
    model = _stack()
    x = _inputs(2, 60, seed=3)
    with torch.no_grad():
        expected, _ = model.step(x, model.init_state(2))
        first, state = model.step(x[:, :23], model.init_state(2))
        torch.save(state.to_dict(), tmp_path / "state.pt")

        torch.manual_seed(99)
        fresh = MambaStack(8, 2).eval()
        fresh.load_state_dict(model.state_dict())
        resumed = fresh.load_state(torch.load(tmp_path / "state.pt", weights_only=True))
        rest, _ = fresh.step(x[:, 23:], resumed)
    assert torch.equal(
        torch.cat([first, rest], dim=1), torch.cat([first, model.step(x[:, 23:], state)[0]], 1)
    )
    torch.testing.assert_close(torch.cat([first, rest], dim=1), expected, rtol=0, atol=TOL)


def test_state_from_numpy_arrays_round_trips() -> None:
    model = _stack()
    with torch.no_grad():
        _, state = model.step(_inputs(1, 7, seed=4), model.init_state(1))
    as_numpy = {k: v.numpy() for k, v in state.to_dict().items()}
    restored = StackState.from_dict(as_numpy)
    for key, tensor in restored.to_dict().items():
        assert torch.equal(tensor, state.to_dict()[key])


def test_streams_stepped_together_equal_streams_stepped_alone() -> None:
    model = _stack()
    x = _inputs(3, 40, seed=5)
    with torch.no_grad():
        together, state = _stream(model, x, [0, 17, 40], model.init_state(3))
        for i in range(3):
            alone, alone_state = _stream(model, x[i : i + 1], [0, 17, 40], model.init_state(1))
            torch.testing.assert_close(together[i : i + 1], alone, rtol=0, atol=TOL)
            for key, tensor in state.select([i]).to_dict().items():
                torch.testing.assert_close(tensor, alone_state.to_dict()[key], rtol=0, atol=TOL)


def test_headbands_joining_and_leaving_a_batch_keep_their_own_history() -> None:
    model = _stack()
    a, b = _inputs(1, 30, seed=6), _inputs(1, 30, seed=7)
    with torch.no_grad():
        alone_a, _ = model.step(a, model.init_state(1))
        alone_b, _ = model.step(b, model.init_state(1))
        # a starts alone, b joins after 12 epochs with a fresh state, then a leaves the batch
        ya1, state_a = model.step(a[:, :12], model.init_state(1))
        joint = StackState.cat([model.init_state(1), state_a])
        y_joint, joint = model.step(torch.cat([b[:, :10], a[:, 12:22]]), joint)
        yb2, _ = model.step(b[:, 10:], joint.select([0]))
        ya3, _ = model.step(a[:, 22:], joint.select([1]))
    torch.testing.assert_close(torch.cat([ya1, y_joint[1:], ya3], 1), alone_a, rtol=0, atol=TOL)
    torch.testing.assert_close(torch.cat([y_joint[:1], yb2], 1), alone_b, rtol=0, atol=TOL)
    assert joint.batch_size == 2


def test_low_precision_model_keeps_a_float32_state_and_residual() -> None:
    model = MambaStack(8, 2).to(torch.bfloat16).eval()
    state = model.init_state(1)
    assert all(layer.ssm_state.dtype == torch.float32 for layer in state.layers)
    with torch.no_grad():
        y, state = model.step(_inputs(1, 5, seed=9).to(torch.bfloat16), state)
    assert y.dtype == torch.bfloat16 and torch.isfinite(y.float()).all()
    assert state.layers[0].ssm_state.dtype == torch.float32


def test_bad_configuration_and_states_raise_actionable_errors() -> None:
    with pytest.raises(ConfigError, match="norm"):
        MambaStack(8, 1, norm="batchnorm")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="layer"):
        MambaStack(8, 0)
    model = _stack()
    with pytest.raises(ModelError, match="init_state"):
        model.step(_inputs(1, 3), _stack(n_layers=1).init_state(1))
    with pytest.raises(ResumeError, match="another size"):
        model.load_state(_stack(d_model=4).init_state(1).to_dict())
    with pytest.raises(ResumeError, match="unknown entry"):
        model.load_state({"normalizer": torch.zeros(3)})
    with pytest.raises(ResumeError, match="damaged"):
        model.load_state(
            {"layers.1.conv_state": torch.zeros(1, 16, 3), "layers.1.ssm_state": torch.zeros(1, 16, 16)}
        )
    with pytest.raises(ModelError, match="same depth"):
        StackState.cat([])
