"""The beds of a lab: a BEDS.toml file, or ``--bed NAME=STREAM`` options.

A lab file has a ``[lab]`` table (``out``: the folder that gets one night folder per bed; ``step``:
``"together"`` or ``"alone"``; ``batch_window_ms``), the tables of ``streamstage.toml`` that every bed
inherits (``[alarm]``, ``[clock]``, ``[events]``, ``[[hooks]]``), and one ``[beds.NAME]`` table per bed:
its stream (``name``, ``type``, ``source_id``), its channel (``channel``, ``reference``) and its own
``alarm``/``clock``/``events`` keys (over the lab's) and ``hooks`` (after the lab's). See
``examples/lab.toml`` and docs/lab.md.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from streamstage.config import Settings, check_tables, resolve_settings
from streamstage.errors import ConfigError
from streamstage.night import StreamQuery

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

Step = Literal["together", "alone"]
LAB_KEYS = ("out", "step", "batch_window_ms")
STREAM_QUERY_KEYS = ("name", "type", "source_id")
BED_CHANNEL_KEYS = ("channel", "reference")
INHERITED_TABLES = ("alarm", "clock", "events")
_BED_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class BedSpec:
    """One bed: its name (its night folder's), the stream it stages and its own settings."""

    name: str
    stream: StreamQuery
    settings: Settings = field(default_factory=Settings)


@dataclass(frozen=True)
class LabFile:
    """What a lab file says: the beds, and the ``[lab]`` table's choices (None: not given)."""

    beds: tuple[BedSpec, ...]
    out: Path | None = None
    step: Step | None = None
    batch_window_s: float | None = None


def read_lab_file(path: Path, query: StreamQuery | None = None) -> LabFile:
    """The lab file at ``path``; every bed's stream is looked for as ``query`` says (its timeouts)."""
    query = query or StreamQuery()
    try:
        with path.open("rb") as file:
            tables = tomllib.load(file)
    except FileNotFoundError as error:
        raise ConfigError(f"lab file {path} does not exist; check the path.") from error
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise ConfigError(f"cannot read lab file {path}: {error}; fix the line it names.") from error
    lab = _table(tables.pop("lab", {}), f"{path}: [lab]")
    _known(lab, LAB_KEYS, f"{path}: lab")
    beds_table = _table(tables.pop("beds", {}), f"{path}: [beds]")
    if not beds_table:
        raise ConfigError(f"{path} has no bed: add a [beds.NAME] table per bed, with the stream's name.")
    check_tables(tables, str(path))
    if "stream" in tables:
        raise ConfigError(f"{path}: a lab has no [stream] table; each [beds.NAME] names its stream.")
    beds = tuple(
        _bed(name, _table(row, f"{path}: [beds.{name}]"), tables, path, query)
        for name, row in beds_table.items()
    )
    out = lab.get("out")
    window = lab.get("batch_window_ms")
    if window is not None and (isinstance(window, bool) or not isinstance(window, int | float) or window < 0):
        raise ConfigError(f"{path}: lab.batch_window_ms must be a number of milliseconds >= 0.")
    return LabFile(
        beds,
        out=None if out is None else (path.resolve().parent / _string(out, f"{path}: lab.out")),
        step=_step(lab["step"], f"{path}: lab.step") if "step" in lab else None,
        batch_window_s=None if window is None else window / 1000.0,
    )


def bed_from_option(text: str, query: StreamQuery | None = None) -> BedSpec:
    """``--bed NAME=STREAM``: bed NAME stages the LSL stream named STREAM (the lab's default settings)."""
    query = query or StreamQuery()
    name, separator, stream = text.partition("=")
    if not separator or not stream.strip():
        raise ConfigError(f"--bed {text!r}: write NAME=STREAM, e.g. --bed bed01=Muse-01.")
    _check_name(name.strip(), f"--bed {text!r}")
    return BedSpec(name.strip(), _query(query, name=stream.strip()))


def check_beds(beds: tuple[BedSpec, ...]) -> tuple[BedSpec, ...]:
    """Refuse no bed, or two beds of one name (they would share a night folder) or of one stream."""
    if not beds:
        raise ConfigError("a lab needs beds: give a lab file (BEDS.toml) or --bed NAME=STREAM options.")
    for attribute, what in (("name", "name"), ("stream", "stream")):
        seen: dict[Any, str] = {}
        for bed in beds:
            key = getattr(bed, attribute)
            if key in seen:
                raise ConfigError(
                    f"beds {seen[key]!r} and {bed.name!r} have the same {what}; give each its own."
                )
            seen[key] = bed.name
    return beds


def _bed(name: str, row: dict[str, Any], lab: Mapping[str, Any], path: Path, query: StreamQuery) -> BedSpec:
    where = f"{path}: beds.{name}"
    _check_name(name, where)
    _known(row, (*STREAM_QUERY_KEYS, *BED_CHANNEL_KEYS, *INHERITED_TABLES, "hooks"), where)
    stream = {key: _string(row[key], f"{where}.{key}") for key in STREAM_QUERY_KEYS if key in row}
    if not stream:
        raise ConfigError(f"{where}: say which stream the bed stages (name, type or source_id).")
    tables: dict[str, Any] = {"stream": {k: row[k] for k in ("name", "type", *BED_CHANNEL_KEYS) if k in row}}
    for table in INHERITED_TABLES:
        merged = {**_table(lab.get(table, {}), where), **_table(row.get(table, {}), f"{where}.{table}")}
        if merged:
            tables[table] = merged
    tables["hooks"] = [*lab.get("hooks", []), *row.get("hooks", [])]
    check_tables(tables, where)
    settings = resolve_settings({}, tables, base_dir=path.resolve().parent)
    return BedSpec(name, _query(query, **stream), settings)


def _query(query: StreamQuery, **fields: str) -> StreamQuery:
    return StreamQuery(
        fields.get("name"),
        fields.get("type"),
        fields.get("source_id"),
        query.resolve_timeout_s,
        query.lost_after_s,
        query.buffer_s,
    )


def _check_name(name: str, where: str) -> None:
    if not _BED_NAME.match(name):
        raise ConfigError(
            f"{where}: bed name {name!r} names its night folder: use letters, digits, '.', '_' or '-'."
        )


def _step(value: Any, where: str) -> Step:
    if value not in ("together", "alone"):
        raise ConfigError(f'{where} must be "together" or "alone", got {value!r}.')
    return value


def _table(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"{where} must be a table of keys.")
    return value


def _string(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"{where} must be a string, got {value!r}.")
    return value


def _known(row: Mapping[str, Any], keys: tuple[str, ...], where: str) -> None:
    unknown = sorted(set(row) - set(keys))
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r}; known keys: {', '.join(keys)}.")
