"""Every streaming part of a model keeps one promise (:class:`StreamingModule`): stepping over any chunking
equals one pass over the whole sequence, and a state saved and loaded through the checked loader continues
exactly. The stack, the feature stagers (one network, an ensemble) and the raw-signal front end all do."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

import pytest
import torch

from streamstage.errors import ResumeError
from streamstage.model import MambaStack, StreamingModule
from streamstage.model.ensemble import EnsembleNet
from streamstage.model.raw_frontend import FrontEndConfig, RawFrontEnd
from streamstage.model.stager import StagerConfig, StagingNet


@dataclass(frozen=True)
class Case:
    build: Callable[[], torch.nn.Module]
    inputs: Callable[[int], torch.Tensor]
    """A batch of two streams ``n`` steps long."""
    time_axis: int
    length: int
    cuts: tuple[int, ...]


def _features(n: int) -> torch.Tensor:
    return torch.randn(2, n, 1, 10, generator=torch.Generator().manual_seed(n))


CASES = {
    "stack": Case(
        lambda: MambaStack(8, 2),
        lambda n: torch.randn(2, n, 8, generator=torch.Generator().manual_seed(n)),
        1,
        12,
        (1, 5, 6, 11),
    ),
    "feature stager": Case(
        lambda: StagingNet(StagerConfig(d_model=16, n_layers=2)), _features, 1, 12, (3, 4, 9)
    ),
    "ensemble": Case(
        lambda: EnsembleNet.of([StagingNet(StagerConfig(d_model=16, n_layers=1)) for _ in range(3)]),
        _features,
        1,
        12,
        (2, 7),
    ),
    "raw front end": Case(
        RawFrontEnd,
        lambda n: 20 * torch.randn(2, n, generator=torch.Generator().manual_seed(n)),
        1,
        3 * 3000,
        (1, 150, 2999, 3000, 4567, 6001),
    ),
}


def _stepped(module: torch.nn.Module, x: torch.Tensor, case: Case, state) -> tuple[torch.Tensor, object]:
    outputs, edges = [], [0, *case.cuts, case.length]
    for a, b in itertools.pairwise(edges):
        chunk = x.narrow(case.time_axis, a, b - a)
        out, state = module.step(chunk, state)
        outputs.append(out)
    return torch.cat(outputs, 1), state


@pytest.fixture(params=list(CASES))
def case(request) -> Case:
    torch.manual_seed(0)
    return CASES[request.param]


def test_it_is_a_streaming_module_whose_steps_equal_one_pass(case: Case) -> None:
    module = case.build().eval()
    assert isinstance(module, StreamingModule)
    x = case.inputs(case.length)
    with torch.no_grad():
        whole = module(x)
        stepped, _ = _stepped(module, x, case, module.init_state(2))
    torch.testing.assert_close(stepped, whole, rtol=1e-4, atol=1e-4)


def test_a_saved_state_loads_through_the_checked_loader_and_continues(case: Case) -> None:
    module = case.build().eval()
    x = case.inputs(case.length)
    half = case.cuts[len(case.cuts) // 2]
    with torch.no_grad():
        _, state = module.step(x.narrow(case.time_axis, 0, half), module.init_state(2))
        rest = x.narrow(case.time_axis, half, case.length - half)
        straight, _ = module.step(rest, state)
        again, _ = module.step(rest, module.load_state(state.to_dict()))
    torch.testing.assert_close(again, straight, rtol=0, atol=0)


def test_a_state_of_another_size_is_refused(case: Case) -> None:
    module = case.build().eval()
    other: StreamingModule
    if isinstance(module, MambaStack):
        other = MambaStack(8, 3)
    elif isinstance(module, RawFrontEnd):
        other = RawFrontEnd(FrontEndConfig(n_extra=2))
    else:
        other = StagingNet(StagerConfig(d_model=32, n_layers=2))
    with pytest.raises(ResumeError):
        module.load_state(other.init_state(2).to_dict())


def test_the_bidirectional_reference_sees_the_future_and_cannot_stream() -> None:
    torch.manual_seed(0)
    causal = StagingNet(StagerConfig(d_model=16, n_layers=1)).eval()
    both = StagingNet(StagerConfig(d_model=16, n_layers=1, bidirectional=True)).eval()
    x = _features(8)
    changed = x.clone()
    changed[:, -1] += 1.0
    with torch.no_grad():
        assert torch.equal(causal(x)[:, :-1], causal(changed)[:, :-1])
        assert not torch.equal(both(x)[:, 0], both(changed)[:, 0])
    with pytest.raises(RuntimeError, match="offline reference"):
        both.init_state(1)
