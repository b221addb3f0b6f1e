"""The Mamba block: mamba-ssm compatible parameters, and forward == step == stream for any chunking."""

from __future__ import annotations

import functools
import itertools
import math
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from streamstage.errors import ConfigError, ModelError, ResumeError
from streamstage.model import Mamba, MambaCache, selective_scan, selective_scan_ref
from streamstage.model import scan as scan_module

TOL = 1e-5


def _randomised(model: Mamba, seed: int) -> Mamba:
    """Random weights everywhere, so no term of the recurrence hides behind its initial value."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            noise = torch.randn(param.shape, generator=gen)
            if name == "A_log":
                param.copy_(param + 0.5 * noise)
            elif name == "dt_proj.bias":
                param.copy_(param + noise)
            else:
                param.copy_(noise / math.sqrt(max(1, param.shape[-1])))
    return model.eval()


@functools.cache
def _model(d_model: int = 8, seed: int = 0) -> Mamba:
    torch.manual_seed(seed)
    return _randomised(Mamba(d_model), seed)


def _inputs(batch: int, length: int, d_model: int, seed: int) -> torch.Tensor:
    return torch.randn(batch, length, d_model, generator=torch.Generator().manual_seed(seed))


def _expected_state_dict(d_model: int) -> list[tuple[str, tuple[int, ...]]]:
    d_inner, dt_rank, d_state, d_conv = 2 * d_model, math.ceil(d_model / 16), 16, 4
    return [  # nn.Module lists a module's own parameters before its submodules', as in mamba-ssm
        ("A_log", (d_inner, d_state)),
        ("D", (d_inner,)),
        ("in_proj.weight", (2 * d_inner, d_model)),
        ("conv1d.weight", (d_inner, 1, d_conv)),
        ("conv1d.bias", (d_inner,)),
        ("x_proj.weight", (dt_rank + 2 * d_state, d_inner)),
        ("dt_proj.weight", (d_inner, dt_rank)),
        ("dt_proj.bias", (d_inner,)),
        ("out_proj.weight", (d_model, d_inner)),
    ]


@pytest.mark.parametrize("d_model", [16, 64])
def test_state_dict_names_and_shapes_are_mamba_ssms(d_model: int) -> None:
    model = Mamba(d_model)
    got = [(name, tuple(t.shape)) for name, t in model.state_dict().items()]
    assert got == _expected_state_dict(d_model)
    # and a state dict moves unchanged: strict load into a fresh block, same outputs
    other = Mamba(d_model)
    other.load_state_dict(model.state_dict(), strict=True)
    x = _inputs(1, 5, d_model, seed=1)
    torch.testing.assert_close(other(x), model(x), rtol=0, atol=0)


def test_initialisation_follows_mamba_ssm() -> None:
    torch.manual_seed(0)
    model = Mamba(64, dt_min=0.001, dt_max=0.1)
    a = torch.arange(1, 17, dtype=torch.float32).repeat(128, 1)
    torch.testing.assert_close(model.A_log.detach(), torch.log(a))
    assert model.A_log.dtype == torch.float32
    torch.testing.assert_close(model.D.detach(), torch.ones(128))
    dt = F.softplus(model.dt_proj.bias.detach())
    assert dt.min() >= 0.001 * (1 - 1e-4) and dt.max() <= 0.1 * (1 + 1e-4)
    std = model.dt_rank**-0.5
    assert model.dt_proj.weight.abs().max() <= std
    assert model.in_proj.bias is None and model.conv1d.bias is not None


@pytest.mark.parametrize("length", [1, 3, 40, 257])
def test_forward_equals_step_token_by_token(length: int) -> None:
    model = _model()
    x = _inputs(2, length, 8, seed=length)
    with torch.no_grad():
        expected = model(x)
        cache = model.allocate_inference_cache(2)
        outputs = []
        for t in range(length):
            y, cache = model.step(x[:, t], cache)
            outputs.append(y)
    torch.testing.assert_close(torch.stack(outputs, dim=1), expected, rtol=0, atol=TOL)


@settings(max_examples=30, deadline=None)
@given(
    length=st.integers(1, 150),
    cuts=st.lists(st.integers(0, 150), max_size=6),
    seed=st.integers(0, 2**16),
)
def test_forward_equals_stream_for_any_chunking(length: int, cuts: list[int], seed: int) -> None:
    model = _model()
    x = _inputs(2, length, 8, seed=seed)
    edges = [0, *sorted(c for c in cuts if c <= length), length]  # repeated edges make empty chunks
    with torch.no_grad():
        expected = model(x)
        cache = model.allocate_inference_cache(2)
        outputs = []
        for start, stop in itertools.pairwise(edges):
            y, cache = model.stream(x[:, start:stop], cache)
            outputs.append(y)
        _, whole_cache = model.stream(x, model.allocate_inference_cache(2))
    torch.testing.assert_close(torch.cat(outputs, dim=1), expected, rtol=0, atol=TOL)
    torch.testing.assert_close(cache.ssm_state, whole_cache.ssm_state, rtol=0, atol=TOL)
    torch.testing.assert_close(cache.conv_state, whole_cache.conv_state, rtol=0, atol=TOL)


def test_step_follows_the_papers_recurrence() -> None:
    """An independent reference in plain loops: conv, dA = exp(dt A), h = dA h + dt B x, y = C h + D x,
    gated by silu(z), for a tiny block in float64."""
    torch.manual_seed(3)
    model = _randomised(Mamba(4, d_state=3, d_conv=3), seed=3).double()
    p = {k: v.detach().tolist() for k, v in model.state_dict().items()}
    d_inner, d_state, d_conv, dt_rank = 8, 3, 3, 1
    x = _inputs(1, 12, 4, seed=4).double()

    def matvec(w: list[list[float]], v: list[float]) -> list[float]:
        return [sum(wi * vi for wi, vi in zip(row, v, strict=True)) for row in w]

    def silu(v: float) -> float:
        return v / (1 + math.exp(-v))

    history = [[0.0] * d_inner for _ in range(d_conv - 1)]
    h = [[0.0] * d_state for _ in range(d_inner)]
    expected = []
    for t in range(x.shape[1]):
        xz = matvec(p["in_proj.weight"], x[0, t].tolist())
        u_in, z = xz[:d_inner], xz[d_inner:]
        history.append(u_in)
        window = history[-d_conv:]
        u = [
            silu(sum(p["conv1d.weight"][d][0][k] * window[k][d] for k in range(d_conv)) + p["conv1d.bias"][d])
            for d in range(d_inner)
        ]
        proj = matvec(p["x_proj.weight"], u)
        dt_low, b, c = proj[:dt_rank], proj[dt_rank : dt_rank + d_state], proj[dt_rank + d_state :]
        dt = [
            math.log1p(math.exp(v + bias))
            for v, bias in zip(matvec(p["dt_proj.weight"], dt_low), p["dt_proj.bias"], strict=True)
        ]
        y = []
        for d in range(d_inner):
            acc = 0.0
            for n in range(d_state):
                a = -math.exp(p["A_log"][d][n])
                h[d][n] = math.exp(dt[d] * a) * h[d][n] + dt[d] * b[n] * u[d]
                acc += c[n] * h[d][n]
            y.append((acc + p["D"][d] * u[d]) * silu(z[d]))
        expected.append(matvec(p["out_proj.weight"], y))

    cache = model.allocate_inference_cache(1, dtype=torch.float64)
    got = []
    with torch.no_grad():
        for t in range(x.shape[1]):
            out, cache = model.step(x[:, t : t + 1], cache)
            got.append(out[0, 0])
    assert cache.ssm_state.dtype == torch.float64
    torch.testing.assert_close(
        torch.stack(got), torch.tensor(expected, dtype=torch.float64), rtol=1e-9, atol=1e-10
    )
    torch.testing.assert_close(
        cache.ssm_state[0], torch.tensor(h, dtype=torch.float64), rtol=1e-9, atol=1e-10
    )


def _scan_args(batch: int, length: int, d_inner: int, d_state: int, seed: int) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)

    def randn(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=gen)

    return {
        "u": randn(batch, length, d_inner),
        "delta": randn(batch, length, d_inner),
        "A": -torch.exp(randn(d_inner, d_state)),
        "B": randn(batch, length, d_state),
        "C": randn(batch, length, d_state),
        "D": randn(d_inner),
        "z": randn(batch, length, d_inner),
        "delta_bias": randn(d_inner),
        "initial_state": randn(batch, d_inner, d_state),
    }


@pytest.mark.parametrize("length", [1, 2, 5, 64, 301])
def test_blocked_scan_equals_the_loop_across_blocks(length: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scan_module, "_BLOCK_ELEMENTS", 3 * 2 * 6 * 4)  # blocks of 4 tokens
    args = _scan_args(3, length, 6, 4, seed=length)
    y, state = selective_scan(**args, delta_softplus=True)
    y_ref, state_ref = selective_scan_ref(**args, delta_softplus=True)
    torch.testing.assert_close(y, y_ref, rtol=1e-5, atol=TOL)
    torch.testing.assert_close(state, state_ref, rtol=1e-5, atol=TOL)


def test_scan_gradients_equal_the_loops() -> None:
    """Training runs through ``forward``: the parallel scan must differentiate like the recurrence."""
    grads = []
    for scan in (selective_scan, selective_scan_ref):
        args = {k: v.requires_grad_() for k, v in _scan_args(2, 37, 4, 3, seed=5).items()}
        y, state = scan(**args, delta_softplus=True)
        (y.square().sum() + state.sum()).backward()
        grads.append({k: v.grad for k, v in args.items()})
    for name, grad in grads[0].items():
        torch.testing.assert_close(grad, grads[1][name], rtol=1e-4, atol=1e-4, msg=name)


def test_empty_chunk_leaves_the_cache_as_it_was() -> None:
    model = _model()
    with torch.no_grad():
        _, cache = model.stream(_inputs(1, 9, 8, seed=2), model.allocate_inference_cache(1))
        y, after = model.stream(torch.zeros(1, 0, 8), cache)
    assert y.shape == (1, 0, 8)
    assert torch.equal(after.conv_state, cache.conv_state) and torch.equal(after.ssm_state, cache.ssm_state)


def test_stream_never_modifies_the_cache_it_was_given() -> None:
    model = _model()
    cache = model.allocate_inference_cache(1)
    with torch.no_grad():
        _, later = model.stream(_inputs(1, 6, 8, seed=6), cache)
    assert not cache.ssm_state.any() and not cache.conv_state.any()
    assert later.ssm_state.any()


def test_cache_survives_torch_save_with_weights_only(tmp_path) -> None:
    model = _model()
    x = _inputs(2, 30, 8, seed=7)
    with torch.no_grad():
        expected, _ = model.stream(x, model.allocate_inference_cache(2))
        first, cache = model.stream(x[:, :11], model.allocate_inference_cache(2))
        torch.save(cache.to_dict(), tmp_path / "cache.pt")
        loaded = MambaCache.from_dict(torch.load(tmp_path / "cache.pt", weights_only=True))
        rest, _ = model.stream(x[:, 11:], loaded)
    torch.testing.assert_close(torch.cat([first, rest], 1), expected, rtol=0, atol=TOL)
    assert loaded.nbytes == cache.nbytes == 2 * 16 * (3 * 4 + 16 * 4)


def test_cache_select_and_cat_split_and_join_streams() -> None:
    model = _model()
    x = _inputs(3, 10, 8, seed=8)
    with torch.no_grad():
        _, cache = model.stream(x, model.allocate_inference_cache(3))
    joined = MambaCache.cat([cache.select([2]), cache.select([0, 1])])
    assert torch.equal(joined.ssm_state, cache.ssm_state[[2, 0, 1]])
    assert torch.equal(joined.conv_state, cache.conv_state[[2, 0, 1]])


def test_misuse_raises_errors_that_say_what_to_do() -> None:
    with pytest.raises(ConfigError, match="dt_init"):
        Mamba(8, dt_init="zeros")
    model = _model()
    with pytest.raises(ModelError, match="shape"):
        model(torch.zeros(1, 3, 5))
    with pytest.raises(ModelError, match="batch size"):
        model.stream(torch.zeros(2, 3, 8), model.allocate_inference_cache(1))
    with pytest.raises(ModelError, match="stream"):
        model.step(torch.zeros(1, 2, 8), model.allocate_inference_cache(1))
    with pytest.raises(ResumeError, match="damaged"):
        MambaCache.from_dict({"conv_state": torch.zeros(1, 16, 3)})
    with pytest.raises(ResumeError, match="inconsistent"):
        MambaCache.from_dict({"conv_state": torch.zeros(1, 16, 3), "ssm_state": torch.zeros(2, 16, 16)})


def test_mamba_ssm_is_never_imported_on_the_cpu_path() -> None:
    code = (
        "import sys, torch\n"
        "from streamstage.model import MambaStack\n"
        "m = MambaStack(8, 1)\n"
        "m(torch.zeros(1, 4, 8)); m.step(torch.zeros(1, 8), m.init_state(1))\n"
        "assert not {'mamba_ssm', 'causal_conv1d'} & set(sys.modules), sorted(sys.modules)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
