"""The command line starts without PyTorch where no model is needed (checked on sys.modules in a fresh
interpreter, never by timing), and its top-level help lists every command with its own help line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from streamstage.cli import COMMANDS, build_parser

PROBE = """
import sys
from pathlib import Path
from streamstage.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
print("torch imported" if "torch" in sys.modules else "no torch")
"""


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["--version"],
        ["streams", "--help"],
        ["streams", "--timeout", "0.2"],
        ["report", "--help"],
        ["bench", "--help"],
        ["stage", "--help"],
    ],
)
def test_commands_that_need_no_model_do_not_import_torch(argv: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, "-c", PROBE, *argv],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        timeout=60,
    )
    assert result.stdout.strip().splitlines()[-1] == "no torch", result.stdout + result.stderr


def test_top_level_help_matches_each_commands_own_help() -> None:
    (subparsers,) = build_parser()._subparsers._group_actions  # type: ignore[union-attr]
    own = {action.dest: action.help for action in subparsers._choices_actions}
    assert own == COMMANDS


def test_report_of_a_night_folder_does_not_import_torch(tmp_path: Path) -> None:
    from streamstage import STAGES
    from streamstage.output import HYPNOGRAM_COLUMNS

    rows = [
        f"{i},{30.0 * i:.3f},2026-05-09T23:{i // 2:02d}:{30 * (i % 2):02d}+00:00,{STAGES[0]},"
        + ",".join(["0.20000"] * len(STAGES))
        + ",good,12.500,\n"
        for i in range(20)
    ]
    (tmp_path / "hypnogram.csv").write_text(",".join(HYPNOGRAM_COLUMNS) + "\n" + "".join(rows))
    result = subprocess.run(
        [sys.executable, "-c", PROBE, "report", "--quiet", str(tmp_path)],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        timeout=120,
    )
    assert (tmp_path / "summary.txt").exists(), result.stdout + result.stderr
    assert result.stdout.strip().splitlines()[-1] == "no torch", result.stdout + result.stderr
