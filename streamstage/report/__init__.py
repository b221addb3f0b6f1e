"""The morning report: ``summary.txt`` and ``report.png`` from a night's ``hypnogram.csv``, and from its
morning re-score (``rescored.csv``) where there is one.

Both the ``streamstage report DIR`` command and the end of a live night call :func:`write_report`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from streamstage.errors import InputFileError, OutputError
from streamstage.output import HYPNOGRAM_FILE
from streamstage.report.figure import plot_night
from streamstage.report.night import StagedNight, read_night
from streamstage.report.rescore import read_rescored, read_rescored_probs, rescore_night
from streamstage.report.summary import format_summary

SUMMARY_FILE = "summary.txt"
FIGURE_FILE = "report.png"

__all__ = ["Report", "StagedNight", "format_summary", "plot_night", "read_night", "write_report"]


@dataclass(frozen=True)
class Report:
    """What :func:`write_report` wrote; ``note`` says why ``figure_path`` is ``None`` when it is."""

    summary: str
    summary_path: Path
    figure_path: Path | None
    note: str | None = None


def write_report(night_dir: Path, rescore: str | None = None) -> Report:
    """Write ``summary.txt`` and, with matplotlib installed, ``report.png`` into the night's folder;
    ``rescore`` (``"model"`` or ``"yasa"``) re-scores the saved raw night first (``rescored.csv``).

    Files are written beside the hypnogram under a temporary name and renamed into place, so a report
    read while (re)written is never half a file.
    """
    night_dir = Path(night_dir)
    if not night_dir.is_dir():
        raise InputFileError(f"{night_dir} is not a folder: pass the night's output folder")
    night = read_night(night_dir / HYPNOGRAM_FILE)
    if rescore is not None and night.n_epochs:
        rescore_night(night_dir, night, rescore)
    rescored = read_rescored(night_dir, night)
    summary = format_summary(night, rescored)
    summary_path = night_dir / SUMMARY_FILE
    _replace(summary_path, lambda tmp: tmp.write_text(summary, encoding="utf-8"))
    if night.n_epochs == 0:
        return Report(summary, summary_path, None, "no epoch was staged, so there is no report.png")
    figure_path = night_dir / FIGURE_FILE
    try:
        probs = read_rescored_probs(night_dir, night)
        _replace(figure_path, lambda tmp: plot_night(night, tmp, rescored, probs))
    except ModuleNotFoundError as error:
        if not (error.name or "").startswith("matplotlib"):
            raise
        note = "matplotlib is not installed, so there is no report.png: pip install 'streamstage[report]'"
        return Report(summary, summary_path, None, note)
    return Report(summary, summary_path, figure_path)


def _replace(path: Path, write: Callable[[Path], object]) -> None:
    """Write through ``write`` to a temporary sibling, then rename it over ``path``."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        write(tmp)
        tmp.replace(path)
    except OSError as error:
        tmp.unlink(missing_ok=True)
        raise OutputError(
            f"cannot write {path} ({error}): check the folder's permissions and free space"
        ) from error
