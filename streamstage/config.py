"""Settings from a TOML file (``--config streamstage.toml``) and from flags; flags win.

Use: :func:`add_arguments` on the ``run`` parser, then :func:`resolve_settings` on the parsed flags
(``vars(args)``, or any mapping of the same dests from a program).
Every option added here defaults to None so "not given" can be told apart from "given the default"; the
real defaults live in one place, :class:`~streamstage.alarm.AlarmConfig`. Hooks from ``--hook`` are added to
the file's hooks rather than replacing them. See ``examples/streamstage.toml`` for every key.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import time
from pathlib import Path
from typing import Any

from streamstage import STAGES
from streamstage.alarm import AlarmConfig, ClockMap, parse_clock_time, parse_duration_s
from streamstage.alarm.onset import DEFAULT_ONSET_EPOCHS
from streamstage.errors import ConfigError
from streamstage.hooks import EVENT_NAMES, HookSpec

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

STREAM_KEYS: tuple[str, ...] = ("name", "type", "channel", "reference", "out")
"""``[stream]`` keys; each fills the ``run`` flag of the same dest when that flag was not given."""

SCHEMA: dict[str, tuple[str, ...]] = {
    "stream": STREAM_KEYS,
    "alarm": ("time", "window", "light_stages", "consecutive", "min_prob", "min_sleep", "snooze"),
    "clock": ("start_clock",),
    "events": ("sleep_onset_epochs",),
    "hooks": ("name", "events", "command", "callable", "entry_point", "url", "timeout", "retries"),
}
TARGET_KEYS: tuple[str, ...] = ("command", "callable", "entry_point", "url")
DEFAULT_HOOK_TIMEOUT = "10s"
DEFAULT_HOOK_RETRIES = 2
_TYPE_NAMES = {int: "an integer", float: "a number", str: "a string", list: "a list"}


def channel_list(text: str) -> tuple[str, ...]:
    """``--channel``'s value: one channel or derivation, or several comma-separated (multi-channel models)."""
    return tuple(channel.strip() for channel in text.split(",") if channel.strip())


@dataclass(frozen=True)
class StreamSettings:
    """Which stream to stage, and how: the ``[stream]`` table, or the ``run`` flags of the same names."""

    name: str | None = None
    type: str | None = None
    channel: tuple[str, ...] | None = None
    """The channel(s) or derivation(s) to stage (default: the model's, else the nearest frontal one)."""
    reference: str | None = None
    out: Path | None = None
    """The night folder (default: a new dated folder under ./nights)."""

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> StreamSettings:
        """From ``[stream]`` strings: ``channel`` is comma-separated for a multi-channel model."""
        checked = {key: _typed(value, str, f"stream.{key}") for key, value in values.items()}
        channel = checked.get("channel")
        out = checked.get("out")
        return cls(
            name=checked.get("name"),
            type=checked.get("type"),
            channel=channel_list(channel) if channel else None,
            reference=checked.get("reference"),
            out=Path(out) if out else None,
        )


@dataclass(frozen=True)
class Settings:
    """Everything the alarm, clock and hooks need, resolved; ``alarm`` is None when no alarm time is set."""

    stream: StreamSettings = field(default_factory=StreamSettings)
    alarm: AlarmConfig | None = None
    start_clock: str | None = None
    sleep_onset_epochs: int = DEFAULT_ONSET_EPOCHS
    hooks: tuple[HookSpec, ...] = ()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--config``, the alarm options, ``--start-clock``, ``--sleep-onset-epochs`` and ``--hook``."""
    parser.add_argument("--config", type=Path, metavar="TOML", help="settings from a TOML file; flags win")
    group = parser.add_argument_group("smart alarm")
    group.add_argument("--alarm", metavar="HH:MM", help="latest wake-up time, e.g. 07:00 (default: no alarm)")
    group.add_argument(
        "--window", dest="alarm_window", metavar="DURATION", help="wake in light sleep this long before (30m)"
    )
    group.add_argument("--alarm-light-stages", metavar="STAGES", help="comma-separated light stages (N1,N2)")
    group.add_argument("--alarm-consecutive", type=int, metavar="K", help="light epochs in a row needed (2)")
    group.add_argument(
        "--alarm-min-prob", type=float, metavar="P", help="summed light-stage probability per epoch (0.6)"
    )
    group.add_argument("--alarm-min-sleep", metavar="DURATION", help="time asleep before a smart wake (20m)")
    group.add_argument("--snooze", dest="alarm_snooze", metavar="DURATION", help="snooze length (9m)")
    group.add_argument(
        "--start-clock", metavar="HH:MM", help="wall-clock time a replay starts at, e.g. 23:10"
    )
    hooks = parser.add_argument_group("event hooks")
    hooks.add_argument(
        "--sleep-onset-epochs", type=int, metavar="N", help="sleep epochs in a row confirming sleep onset (3)"
    )
    hooks.add_argument(
        "--hook",
        dest="hooks",
        action="append",
        metavar="EVENTS=TARGET",
        help=f"run TARGET on EVENTS (comma-separated: {', '.join(EVENT_NAMES)}); TARGET is a command line "
        "(no shell), an http(s):// URL to POST to, py:module:function or ep:entry-point-name; repeatable",
    )


def load_config(path: Path) -> dict[str, Any]:
    """The TOML file as a dict, with unknown tables or keys refused (typos must not be silently ignored)."""
    try:
        with path.open("rb") as file:
            config = tomllib.load(file)
    except FileNotFoundError as error:
        raise ConfigError(f"config file {path} does not exist; check the --config path.") from error
    except OSError as error:
        raise ConfigError(f"cannot read config file {path}: {error.strerror}.") from error
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path} is not valid TOML ({error}); fix the line it names.") from error
    except UnicodeDecodeError as error:
        raise ConfigError(
            f"{path} is not UTF-8 text (byte {error.start}: {error.reason}); save it as UTF-8."
        ) from error
    check_tables(config, str(path))
    return config


def check_tables(config: Mapping[str, Any], path: str) -> None:
    """Refuse unknown tables or keys in ``config`` (read from ``path``, named in the message)."""
    for table, value in config.items():
        if table not in SCHEMA:
            raise ConfigError(f"{path}: unknown table [{table}]; known: {', '.join(SCHEMA)}.")
        rows = value if table == "hooks" else [value]
        if table == "hooks" and not isinstance(value, list):
            raise ConfigError(f"{path}: hooks must be an array of tables, written [[hooks]].")
        for row in rows:
            if not isinstance(row, dict):
                raise ConfigError(f"{path}: [{table}] must be a table of keys.")
            unknown = sorted(set(row) - set(SCHEMA[table]))
            if unknown:
                raise ConfigError(
                    f"{path}: unknown key {table}.{unknown[0]}; known keys: {', '.join(SCHEMA[table])}."
                )


def resolve_settings(
    flags: Mapping[str, Any], config: Mapping[str, Any] | None = None, base_dir: Path | None = None
) -> Settings:
    """Merge the file ``flags["config"]`` (if any) with the flags: a flag that was given wins over the file.

    ``flags`` maps the ``run`` flags' dests to values, None where not given (``vars(args)``). ``config``
    is tables already read and checked (one bed of a lab file), instead of the file; ``base_dir`` is where
    their relative hook commands are (default: the file's folder, else the current one)."""
    path: Path | None = flags.get("config")
    if config is None:
        config = load_config(path) if path is not None else {}
    stream = dict(config.get("stream", {}))
    stream.update({key: str(flags[key]) for key in STREAM_KEYS if flags.get(key) is not None})
    if base_dir is None:
        base_dir = path.resolve().parent if path is not None else Path.cwd()
    file_hooks = tuple(
        _hook_from_table(row, base_dir, f"hooks[{i}]") for i, row in enumerate(config.get("hooks", []))
    )
    flag_hooks = tuple(_hook_from_flag(text) for text in flags.get("hooks") or ())
    onset_value = _pick(flags, "sleep_onset_epochs", config.get("events", {}), "sleep_onset_epochs")
    where = "events.sleep_onset_epochs"
    onset_epochs = DEFAULT_ONSET_EPOCHS if onset_value is None else _positive_int(onset_value, where)
    start_clock = _pick(flags, "start_clock", config.get("clock", {}), "start_clock")
    if start_clock is not None:  # a typo must fail now, not at 7 in the morning
        ClockMap.from_start_clock(_typed(start_clock, str, "clock.start_clock"))
    return Settings(
        stream=StreamSettings.from_values(stream),
        alarm=_alarm_config(flags, config.get("alarm", {}), onset_epochs),
        start_clock=start_clock,
        sleep_onset_epochs=onset_epochs,
        hooks=file_hooks + flag_hooks,
    )


def _pick(flags: Mapping[str, Any], dest: str, table: Mapping[str, Any], key: str) -> Any:
    flag = flags.get(dest)
    return flag if flag is not None else table.get(key)


def _alarm_config(
    flags: Mapping[str, Any], table: Mapping[str, Any], onset_epochs: int
) -> AlarmConfig | None:
    values: dict[str, Any] = {}
    for key, (flag, dest, attribute, convert) in _ALARM_FIELDS.items():
        given = flags.get(dest)
        value, where = (given, flag) if given is not None else (table.get(key), f"alarm.{key}")
        if value is not None:
            values[attribute] = convert(value, where)
    if "time" not in values:
        return None
    return AlarmConfig(**values, onset_epochs=onset_epochs)


def _clock_time(value: Any, where: str) -> time:
    return parse_clock_time(_typed(value, str, where), where)


def _typed(value: Any, kind: type, where: str) -> Any:
    """``value`` if it has the type ``kind`` (an int passes for a float; a bool never passes for a number)."""
    kinds = (int, float) if kind is float else (kind,)
    if isinstance(value, bool) or not isinstance(value, kinds):
        raise ConfigError(f"{where} must be {_TYPE_NAMES[kind]}, got {value!r}.")
    return value


def _positive_int(value: Any, where: str) -> int:
    number = _typed(value, int, where)
    if number < 1:
        raise ConfigError(f"{where} must be at least 1, got {number}.")
    return number


def _stage_codes(value: Any, where: str) -> tuple[int, ...]:
    names = value.split(",") if isinstance(value, str) else _typed(value, list, where)
    codes = []
    for name in names:
        label = str(name).strip().upper()
        if label not in STAGES[1:]:
            raise ConfigError(f"{where}: {name!r} is not a sleep stage; use N1, N2, N3 or REM.")
        codes.append(STAGES.index(label))
    return tuple(codes)


def _events(value: Any, where: str) -> tuple[str, ...]:
    names = value.split(",") if isinstance(value, str) else _typed(value, list, where)
    events = tuple(str(name).strip() for name in names)
    for name in events or ("(none)",):
        if name not in EVENT_NAMES:
            raise ConfigError(
                f"{where}: unknown event {name!r}; use one or more of {', '.join(EVENT_NAMES)}."
            )
    return events


def _hook_from_table(row: Mapping[str, Any], base_dir: Path, where: str) -> HookSpec:
    """A hook spec; a relative command path (``hooks/play_sound.sh``) is taken from ``base_dir``, the config
    file's folder, so a config works from wherever streamstage is started."""
    targets = [key for key in TARGET_KEYS if key in row]
    if len(targets) != 1:
        raise ConfigError(f"{where}: give exactly one of {', '.join(TARGET_KEYS)}.")
    kind = targets[0]
    if "events" not in row:
        raise ConfigError(f'{where}.events is missing: list the events this hook runs on, e.g. ["alarm"].')
    target: str | tuple[str, ...]
    if kind == "command":
        raw = row["command"]
        parts = shlex.split(raw) if isinstance(raw, str) else _typed(raw, list, f"{where}.command")
        argv = [_typed(part, str, f"{where}.command") for part in parts]
        if not argv:
            raise ConfigError(f"{where}.command is empty.")
        program = Path(argv[0])
        if len(program.parts) > 1 and not program.is_absolute():
            argv[0] = str(base_dir / program)
        target = tuple(argv)
    else:
        target = _typed(row[kind], str, f"{where}.{kind}")
    return HookSpec(
        name=_typed(row.get("name", _default_name(kind, target)), str, f"{where}.name"),
        events=_events(row["events"], f"{where}.events"),
        kind=kind,
        target=target,
        timeout_s=parse_duration_s(
            row.get("timeout", DEFAULT_HOOK_TIMEOUT), f"{where}.timeout", plain_minutes=False
        ),
        retries=_retries(row.get("retries", DEFAULT_HOOK_RETRIES), f"{where}.retries"),
    )


def _retries(value: Any, where: str) -> int:
    retries = _typed(value, int, where)
    if not 0 <= retries <= 10:
        raise ConfigError(f"{where} must be between 0 and 10, got {retries}.")
    return retries


def _hook_from_flag(text: str) -> HookSpec:
    events_text, separator, target_text = text.partition("=")
    if not separator or not target_text.strip():
        raise ConfigError(
            f"--hook {text!r}: write EVENTS=TARGET, e.g. --hook alarm=examples/hooks/play_sound.sh."
        )
    row: dict[str, Any] = {"events": events_text}
    if target_text.startswith(("http://", "https://")):
        row["url"] = target_text
    elif target_text.startswith("py:"):
        row["callable"] = target_text.removeprefix("py:")
    elif target_text.startswith("ep:"):
        row["entry_point"] = target_text.removeprefix("ep:")
    else:
        row["command"] = target_text
    return _hook_from_table(row, Path.cwd(), f"--hook {text!r}")


def _default_name(kind: str, target: str | tuple[str, ...]) -> str:
    return Path(target[0]).name if kind == "command" else f"{kind}:{target}"


def _probability(value: Any, where: str) -> float:
    return float(_typed(value, float, where))


def _duration_or_zero(value: Any, where: str) -> float:
    return parse_duration_s(value, where, allow_zero=True)


# [alarm] key -> (flag, its dest, AlarmConfig field, converter of the file's or the flag's value)
_ALARM_FIELDS: dict[str, tuple[str, str, str, Callable[[Any, str], Any]]] = {
    "time": ("--alarm", "alarm", "time", _clock_time),
    "window": ("--window", "alarm_window", "window_s", parse_duration_s),
    "light_stages": ("--alarm-light-stages", "alarm_light_stages", "light_stages", _stage_codes),
    "consecutive": ("--alarm-consecutive", "alarm_consecutive", "consecutive", _positive_int),
    "min_prob": ("--alarm-min-prob", "alarm_min_prob", "min_prob", _probability),
    "min_sleep": ("--alarm-min-sleep", "alarm_min_sleep", "min_sleep_s", _duration_or_zero),
    "snooze": ("--snooze", "alarm_snooze", "snooze_s", parse_duration_s),
}
