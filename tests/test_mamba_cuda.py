"""Parity with mamba-ssm itself, on a CUDA device with mamba-ssm installed (skipped everywhere else)."""

from __future__ import annotations

import pytest
import torch

from streamstage.model import Mamba

pytestmark = pytest.mark.cuda

if not torch.cuda.is_available():
    pytest.skip("needs a CUDA device", allow_module_level=True)
mamba_simple = pytest.importorskip("mamba_ssm.modules.mamba_simple", exc_type=ImportError)

ATOL = 1e-4  # their kernels and ours sum in different orders in float32


def _pair(d_model: int = 64, fast: bool = True) -> tuple[torch.nn.Module, Mamba]:
    torch.manual_seed(0)
    theirs = mamba_simple.Mamba(d_model=d_model, layer_idx=0).cuda().eval()
    ours = Mamba(d_model, use_fast_path=fast).cuda().eval()
    ours.load_state_dict(theirs.state_dict(), strict=True)
    return theirs, ours


def _inputs(length: int) -> torch.Tensor:
    return torch.randn(2, length, 64, generator=torch.Generator().manual_seed(length)).cuda()


@pytest.mark.parametrize("fast", [True, False])
def test_forward_equals_mamba_ssm(fast: bool) -> None:
    theirs, ours = _pair(fast=fast)
    x = _inputs(300)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), theirs(x), rtol=0, atol=ATOL)


@pytest.mark.parametrize("fast", [True, False])
def test_step_equals_mamba_ssm(fast: bool) -> None:
    theirs, ours = _pair(fast=fast)
    x = _inputs(40)
    conv_state, ssm_state = theirs.allocate_inference_cache(2, 1)
    cache = ours.allocate_inference_cache(2)
    with torch.no_grad():
        for t in range(x.shape[1]):
            expected, conv_state, ssm_state = theirs.step(x[:, t : t + 1], conv_state, ssm_state)
            got, cache = ours.step(x[:, t : t + 1], cache)
            torch.testing.assert_close(got, expected, rtol=0, atol=ATOL)
    torch.testing.assert_close(cache.ssm_state, ssm_state.float(), rtol=0, atol=ATOL)
    torch.testing.assert_close(cache.conv_state, conv_state[..., 1:], rtol=0, atol=ATOL)


def test_our_state_dict_loads_into_mamba_ssm() -> None:
    ours = Mamba(64).cuda().eval()
    theirs = mamba_simple.Mamba(d_model=64).cuda().eval()
    theirs.load_state_dict(ours.state_dict(), strict=True)
    x = _inputs(50)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), theirs(x), rtol=0, atol=ATOL)


def test_streaming_on_cuda_equals_forward() -> None:
    _, ours = _pair(fast=True)
    x = _inputs(120)
    with torch.no_grad():
        expected = ours(x)
        first, cache = ours.stream(x[:, :50], ours.allocate_inference_cache(2))
        one, cache = ours.step(x[:, 50:51], cache)
        rest, _ = ours.stream(x[:, 51:], cache)
    torch.testing.assert_close(torch.cat([first, one, rest], 1), expected, rtol=0, atol=ATOL)
