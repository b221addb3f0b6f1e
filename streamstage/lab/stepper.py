"""One model step for every bed of a lab: the beds whose epochs are due together go through one batched call.

Each bed's pipeline steps through its :class:`BedSeat` (an :class:`~streamstage.pipeline.EpochModel`): the
seat normalises the bed's features itself (a :class:`~streamstage.features.CausalNormalizer` of its own, as
:class:`~streamstage.epoch_stager.EpochStager` has) and hands the model input to the :class:`LabStepper`,
which holds the Mamba state of every bed in one :class:`~streamstage.model.fast_step.FastStepper`. Beds run
in threads of their own; the first that asks leads: it waits until every seated bed has asked, or
``window_s`` at most, then steps all that asked in one call and hands each its row. A bed that stalls or has
lost its stream therefore delays the others by ``window_s`` at most, never stops them.

A bed stepped alone gets exactly the numbers of ``streamstage run``; stepped in a batch, its probabilities
differ by float32 rounding (BLAS sums a matrix product's rows in another order than a single row's;
measured below 1e-6), never its stage in practice. A seat saves what an ``EpochStager`` of its own would
save, so each bed's night folder resumes in a lab or with ``run --resume`` alike.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np

from streamstage.epoch_stager import check_streams
from streamstage.features import CausalNormalizer
from streamstage.model.checkpoint import StagingModel
from streamstage.model.fast_step import FastStepper

DEFAULT_WINDOW_S = 0.05
"""How long the first bed to ask waits for the others before the batch is stepped without them."""


class LabStepper:
    """The Mamba state of ``n_beds`` beds, stepped together; :meth:`seat` gives bed ``i`` its model step."""

    def __init__(self, model: StagingModel, n_beds: int, window_s: float = DEFAULT_WINDOW_S) -> None:
        check_streams(model)
        self.model = model
        self.window_s = window_s
        self.stepper = FastStepper.from_net(model.net, n_beds)
        self._fresh = FastStepper.from_net(model.net, 1).to_stack_state()
        self._cond = threading.Condition()
        self._seated: set[int] = set()
        self._pending: dict[int, np.ndarray] = {}
        self._results: dict[int, np.ndarray | BaseException] = {}
        self._leading = False
        self.calls = 0
        """Batched model calls so far."""
        self.steps = 0
        """Bed epochs stepped so far (``steps / calls``: the mean batch)."""

    @property
    def n_beds(self) -> int:
        return self.stepper.batch_size

    def seat(self, bed: int) -> BedSeat:
        """Bed ``bed``'s model step, from an empty history (a resumed bed then loads its saved state)."""
        with self._cond:
            self.stepper.load_stack_state(self._fresh, slice(bed, bed + 1))
            self._seated.add(bed)
        return BedSeat(self, bed)

    def leave(self, bed: int) -> None:
        """Bed ``bed`` has ended (or failed): nobody waits for it any more."""
        with self._cond:
            self._seated.discard(bed)
            self._cond.notify_all()

    def step(self, bed: int, inputs: np.ndarray) -> np.ndarray:
        """Bed ``bed``'s normalised epoch ``(n_channels, n_features)`` -> its stage probabilities ``(5,)``,
        stepped with every bed that asks within the window."""
        with self._cond:
            self._pending[bed] = inputs
            self._cond.notify_all()
            while bed not in self._results:
                if self._leading:
                    self._cond.wait()
                else:
                    self._lead()
            result = self._results.pop(bed)
        if isinstance(result, BaseException):
            raise result
        return result

    def _lead(self) -> None:
        """Wait (lock released) for every seated bed, or the window, then step all that asked."""
        self._leading = True
        try:
            deadline = time.monotonic() + self.window_s
            while not self._seated <= self._pending.keys():
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            batch, self._pending = self._pending, {}
            self._results.update(self._stepped(batch))
        finally:
            self._leading = False
            self._cond.notify_all()

    def _stepped(self, batch: dict[int, np.ndarray]) -> dict[int, np.ndarray | BaseException]:
        """One call for the whole batch; if it fails (one bed's bad input), each bed alone, so the failure
        is only that bed's."""
        beds = sorted(batch)
        self.calls += 1
        self.steps += len(beds)
        try:
            probs = self.stepper.probabilities_streams(np.stack([batch[b] for b in beds]), beds)
            return {b: probs[j] for j, b in enumerate(beds)}
        except Exception:
            if len(beds) == 1:
                raise
        results: dict[int, np.ndarray | BaseException] = {}
        for b in beds:
            try:
                results[b] = self.stepper.probabilities_streams(batch[b][None], [b])[0]
            except Exception as error:
                results[b] = error
        return results

    def state_of(self, bed: int) -> dict[str, Any]:
        return self.stepper.to_stack_state(slice(bed, bed + 1)).to_dict()

    def load_state_of(self, bed: int, state: dict[str, Any]) -> None:
        self.stepper.load_stack_state(self.model.net.load_state(state), slice(bed, bed + 1))


class BedSeat:
    """One bed's model step in a :class:`LabStepper`: what an ``EpochStager`` is to a night of its own."""

    def __init__(self, lab: LabStepper, bed: int) -> None:
        self.lab = lab
        self.bed = bed
        model = lab.model
        self.normalizer = CausalNormalizer(len(model.channels), model.normalizer)
        self._alone: FastStepper | None = None

    def push(self, features: np.ndarray, update_normalizer: bool = True) -> np.ndarray:
        return self.lab.step(self.bed, self.normalizer.push(features, update_normalizer))

    def peek(self, features: np.ndarray) -> np.ndarray:
        """A provisional stage, stepped on a copy of this bed's state by a one-stream stepper of its own:
        nothing moves, and no other bed is waited for (the bed's row is only written by its own steps, so
        it is read without the lab's lock)."""
        saved = self.normalizer.state_dict()
        inputs = self.normalizer.push(features, update=False)
        self.normalizer.load_state_dict(saved)
        if self._alone is None:
            self._alone = FastStepper.from_net(self.lab.model.net, 1)
        self._alone.load_stack_state(self.lab.stepper.to_stack_state(slice(self.bed, self.bed + 1)))
        return self._alone.probabilities(inputs[None])[0]

    def state_dict(self) -> dict[str, Any]:
        """The state an ``EpochStager`` of this bed alone would save (same keys, same shapes)."""
        return {"normalizer": self.normalizer.state_dict(), "model": self.lab.state_of(self.bed)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.normalizer.load_state_dict(state["normalizer"])
        self.lab.load_state_of(self.bed, state["model"])
