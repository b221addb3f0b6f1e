"""Bench and soak results as tables: printed with Rich, and written as Markdown for docs/benchmarks.md.

Each table is built once as plain strings (:class:`TableData`) and rendered either way, so the printed
figures and the documented ones come from the same run and the same rounding.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.table import Table

from streamstage.errors import OutputError


@dataclass(frozen=True)
class TableData:
    title: str
    columns: tuple[str, ...]
    rows: list[tuple[str, ...]] = field(default_factory=list)
    caption: str = ""

    def to_rich(self) -> Table:
        table = Table(title=self.title, caption=self.caption or None)
        for index, column in enumerate(self.columns):
            table.add_column(column, justify="left" if index == 0 else "right")
        for row in self.rows:
            table.add_row(*row)
        return table

    def to_markdown(self) -> str:
        lines = [f"**{self.title}**", "", "| " + " | ".join(self.columns) + " |"]
        lines.append("|" + "|".join(["---"] + ["---:"] * (len(self.columns) - 1)) + "|")
        lines += ["| " + " | ".join(row) + " |" for row in self.rows]
        if self.caption:
            lines += ["", self.caption]
        return "\n".join(lines) + "\n"


def ms(value: float) -> str:
    """Milliseconds with about three significant digits."""
    if value >= 100:
        return f"{value:.0f}"
    return f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def nbytes(value: float) -> str:
    for unit, size in (("MiB", 1024**2), ("KiB", 1024)):
        if value >= size:
            return f"{value / size:.1f} {unit}"
    return f"{value:.0f} B"


def ratio(value: float) -> str:
    return f"{value:.1f}x" if value < 100 else f"{value:.0f}x"


def hours(value: float) -> str:
    return f"{value:g} h"


def _median_p99(summary: dict[str, float]) -> str:
    return f"{ms(summary['median_ms'])} / {ms(summary['p99_ms'])}"


def machine_caption(machine: dict[str, Any], load_after: list[float] | None = None) -> str:
    load = machine.get("load_average") or []
    load_text = f", load average {load[0]:.1f} at start" if load else ""
    if load_after:
        load_text += f" and {load_after[0]:.1f} at the end (1-minute)"
    return (
        f"{machine['cpu']} ({machine['cpus_usable']} usable cores), torch {machine['torch']} "
        f"with {machine['torch_threads']} thread(s){load_text}."
    )


def live_table(live: dict[str, Any]) -> TableData:
    table = TableData(
        "Live path per epoch (ms, median / p99)",
        ("stream", "features", "Mamba step", "features + step", "model state", "RSS"),
        caption=f"{live['model']}: {_members(live['config'])}d_model {live['config']['d_model']}, "
        f"{live['config']['n_layers']} Mamba layers, {live['n_parameters']:,} parameters in all (the step "
        f"column steps every network); last {live['window_epochs']} epochs before each mark.",
    )
    for mark in live["marks"]:
        table.rows.append(
            (
                hours(mark["hours"]),
                _median_p99(mark["features_ms"]),
                _median_p99(mark["step_ms"]),
                _median_p99(mark["live_path_ms"]),
                nbytes(mark["state_bytes"]),
                f"{mark['rss_mb']:.0f} MiB",
            )
        )
    return table


def _members(config: dict[str, Any]) -> str:
    """ "an ensemble of 3 networks, each " for an ensemble; "" for one network."""
    n_members = int(config.get("n_members", 1))
    return f"an ensemble of {n_members} networks, each " if n_members > 1 else ""


def mamba_table(mamba: dict[str, Any]) -> TableData:
    members = mamba.get("n_members", 1)
    whole = f"all {members} networks" if members > 1 else "the model"
    table = TableData(
        "Mamba step alone, batch 1 (ms, median / p99)",
        (
            "stream",
            f"reference step (PyTorch, {whole})",
            f"fast step (NumPy, {whole})",
            "speed-up",
            "fast step, one network",
            "state",
        ),
        caption=f"The fast step as the live path runs it (FastStepper.probabilities). Each steps the same "
        f"tokens from the same state, every epoch, in a loop of its own; last {mamba['window_epochs']} "
        f"before each mark. Largest stage-probability difference between fast and reference over the run: "
        f"{mamba['largest_probability_difference']:.1e}.",
    )
    for mark in mamba["marks"]:
        reference, fast = mark["reference_step_ms"], mark["fast_step_ms"]
        table.rows.append(
            (
                hours(mark["hours"]),
                _median_p99(reference),
                _median_p99(fast),
                ratio(reference["median_ms"] / fast["median_ms"]),
                _median_p99(mark["network_fast_step_ms"]),
                nbytes(mark["state_bytes"]),
            )
        )
    return table


def transformer_table(transformer: dict[str, Any], comparison: list[dict[str, Any]]) -> TableData:
    table = TableData(
        "Mamba vs causal Transformer, per epoch (median ms, ratio to the fast Mamba step of the whole model)",
        (
            "stream",
            "Mamba fast step (model / one network)",
            "Mamba reference step",
            "KV cache (ratio to model / network)",
            "re-attend",
            "Mamba state",
            "KV cache held",
            "KV-run RSS",
        ),
        caption=f"Mamba {transformer['mamba_parameters']:,} parameters in all (every network of the model); "
        f"Transformer, one network's width and depth: "
        f"{transformer['transformer_parameters']:,} (d_model {transformer['d_model']}, "
        f"{transformer['n_layers']} layers, {transformer['n_heads']} heads, MLP {transformer['d_mlp']}). "
        f"KV cache: every epoch stepped, last {transformer['window_epochs']} before each mark timed; "
        f"re-attend: history loaded, {transformer['reattend_steps']} epochs timed at each mark.",
    )
    for row, kv in zip(comparison, transformer["kv_cache"], strict=True):
        table.rows.append(
            (
                hours(row["hours"]),
                f"{row['mamba_fast_step_median_ms']:.3f} / {row['mamba_network_fast_step_median_ms']:.3f}",
                f"{ms(row['mamba_reference_step_median_ms'])} ({ratio(row['mamba_reference_time_ratio'])})",
                f"{ms(row['kv_cache_step_median_ms'])} ({ratio(row['kv_cache_time_ratio'])} / "
                f"{ratio(row['kv_cache_network_time_ratio'])})",
                f"{ms(row['reattend_step_median_ms'])} ({ratio(row['reattend_time_ratio'])})",
                nbytes(row["mamba_state_bytes"]),
                f"{nbytes(row['kv_cache_bytes'])} ({ratio(row['kv_cache_memory_ratio'])})",
                f"{kv['rss_mb']:.0f} MiB",
            )
        )
    return table


def batching_table(batching: dict[str, Any]) -> TableData:
    table = TableData(
        "Many streams in one batched Mamba step, one network (median)",
        ("streams", "reference batch ms", "fast batch ms", "reference µs/stream", "fast µs/stream", "state"),
        caption=f"{batching['n_steps']} batched steps per size; model step only (features are per stream).",
    )
    for row in batching["rows"]:
        table.rows.append(
            (
                str(row["streams"]),
                ms(row["batch_ms"]["median_ms"]),
                ms(row["fast_batch_ms"]["median_ms"]),
                f"{1e3 * row['per_stream_median_ms']:.1f}",
                f"{1e3 * row['fast_per_stream_median_ms']:.1f}",
                nbytes(row["state_bytes"]),
            )
        )
    return table


def lab_batching_table(lab: dict[str, Any]) -> TableData:
    difference = max(row["largest_probability_difference"] for row in lab["batching"])
    table = TableData(
        "A lab's beds due together: one batched step against separate steps (median ms per bed)",
        ("beds", "separate", "lab", "call alone", "separate / lab", "separate / call", "mean batch"),
        caption=f"{lab['rounds']} rounds per size on one pinned core; a round steps one epoch of every bed. "
        "Separate: one EpochStager per bed, stepped in a loop; lab: each bed's thread pushes through its "
        "BedSeat and one of them steps the batch (what `lab` runs); call alone: the batched "
        "FastStepper.probabilities_streams on the normalised batch. Largest probability "
        f"difference, lab vs separate: {difference:.1e}.",
    )
    for row in lab["batching"]:
        table.rows.append(
            (
                str(row["beds"]),
                f"{row['separate_per_bed_ms']:.3f}",
                f"{row['lab_per_bed_ms']:.3f}",
                f"{row['batched_call_per_bed_ms']:.3f}",
                ratio(row["separate_over_lab"]),
                ratio(row["separate_over_call"]),
                f"{row['mean_batch']:.1f}",
            )
        )
    return table


def lab_realtime_table(lab: dict[str, Any]) -> TableData:
    bound_ms = 1e3 * lab["bound_s"]
    table = TableData(
        f"Beds per core in real time: every bed's 30-s epoch at once, staged within {bound_ms:.0f} ms?",
        (
            "beds",
            "p50 ms",
            "p99 ms",
            "worst ms",
            "CPU s",
            "core share",
            "mean batch",
            "staged",
            "within bound",
        ),
        caption=f"Each bed a NightSession as the lab runs it ({lab['sfreq_hz']:g} Hz: intake, signal path, "
        "features, batched step, hypnogram, state saved, raw recording; no LSL) in its own thread, on one "
        "pinned core. Latency from the instant every bed is handed its whole epoch to that epoch staged and "
        f"saved, over {lab['realtime'][0]['rounds']} rounds: an upper bound (live, most of an epoch's signal "
        "work is done while it comes in). CPU s: the process's CPU time for one epoch of every bed; core "
        "share: that over 30 s; mean batch: beds per model call (on one core the beds finish their signal "
        "work one after another, so fewer are due within one window). Largest lab within the bound: "
        f"{lab['largest_beds_meeting_bound']} beds.",
    )
    for row in lab["realtime"]:
        latency = row["latency_ms"]
        table.rows.append(
            (
                str(row["beds"]),
                ms(latency["median_ms"]),
                ms(latency["p99_ms"]),
                ms(row["worst_ms"]),
                f"{row['cpu_s_per_epoch_of_all_beds']:.2f}",
                f"{row['cpu_share_of_real_time']:.1%}",
                f"{row['mean_batch']:.1f}",
                f"{row['epochs_staged']}/{row['epochs_expected']}",
                "yes" if row["meets_bound"] else "no",
            )
        )
    return table


def startup_table(startup: list[dict[str, Any]]) -> TableData:
    table = TableData(
        "Command start-up (fresh interpreter, median wall time)",
        ("command", "seconds", "imports torch"),
        caption="`streams --timeout 0.1` includes its 0.1 s of listening; `run` needs the model, so torch.",
    )
    for row in startup:
        table.rows.append(
            (
                f"streamstage {row['command']}",
                f"{row['seconds']:.2f}",
                "yes" if row["imports_torch"] else "no",
            )
        )
    return table


THROUGHPUT_PATHS = {
    "file": "EDF -> streaming pipeline (stage_recording)",
    "lsl": "LSL replay, max speed, 30-s pushes -> run_night (night folder on disk)",
    "lsl_live_chunks": "the same with 1-s pushes (the replay's live default)",
    "lsl_ram": "the same with 30-s pushes, night folder in memory (/dev/shm)",
    "yasa": "YASA SleepStaging (offline, EEG only, in memory)",
}


def throughput_table(results: dict[str, Any]) -> TableData:
    rows: list[tuple[str, ...]] = []
    notes: list[str] = []
    if "file" in results:
        file_row = results["file"]
        verdict = "meets" if file_row["meets_target"] else "misses"
        notes.append(f"The file pipeline {verdict} the {file_row['target_x_realtime']:,.0f}x target.")
        shares = [
            f"{key} {results[key]['x_realtime'] / file_row['x_realtime']:.2f}"
            for key in ("lsl", "lsl_live_chunks", "lsl_ram")
            if "x_realtime" in results.get(key, {})
        ]
        if shares:
            notes.append(f"LSL / file throughput: {', '.join(shares)}.")
    for key, label in THROUGHPUT_PATHS.items():
        row = results.get(key)
        if row is None:
            continue
        if "skipped" in row:
            rows.append((label, "-", "-", "skipped", "-", "-"))
            notes.append(row["skipped"])
            continue
        lost = "-"
        if "samples_expected" in row:
            lost = str(row["samples_lost"])
        rows.append(
            (
                label,
                hours(round(row["hours"], 2)),
                f"{row['seconds']:.2f}",
                f"{row['x_realtime']:,.0f}x",
                str(row["epochs"]),
                lost,
            )
        )
    columns = ("path", "night", "seconds", "x real time", "epochs staged", "samples lost")
    runs = len(results.get("file", {}).get("runs_s", ()))
    if runs > 1:
        notes.insert(0, f"File and first LSL rows: the fastest of {runs} runs (all in the JSON).")
    return TableData("Whole-night throughput", columns, rows, " ".join(notes))


def archive_table(archive: dict[str, Any]) -> TableData:
    """Archive throughput: nights per minute by runner and worker count, and the scaling from 1 to 2."""
    scaling = ", ".join(f"{runner} {ratio:.2f}x" for runner, ratio in archive["scaling_2_over_1"].items())
    table = TableData(
        "Archive throughput: `stage` on many files (process pool and Dask LocalCluster)",
        ("runner", "workers", "nights", "wall s", "nights/min", "s/night", "cpu s/night", "cluster start s"),
        caption=f"{archive['nights']} synthetic nights of {archive['hours_per_night']:g} h (Fpz-Cz, 100 Hz), "
        f"the shipped default model, median of {archive['repeats']} runs per configuration; a pool's wall "
        "time includes starting its workers (each imports PyTorch and loads the model), a cluster is started "
        "before it is timed; s/night and cpu s/night are a worker's wall and CPU time on a night. Scaling, "
        "nights/min on "
        f"the most workers over 1: {scaling or 'not measured'}. {archive.get('skipped', '')}".rstrip(),
    )
    for m in archive["measurements"]:
        table.rows.append(
            (
                m["runner"],
                str(m["workers"]),
                str(m["nights"]),
                f"{m['wall_s']:.1f}",
                f"{m['nights_per_min']:.1f}",
                f"{m['staging_s_per_night']:.2f}",
                f"{m['cpu_s_per_night']:.2f}",
                f"{m['startup_s']:.1f}" if m["runner"] == "dask" else "-",
            )
        )
    return table


def profile_table(profile: dict[str, Any], path: str) -> TableData:
    table = TableData(
        f"Where the time goes: {path} (cProfile over {profile['hours']:g} h, by own time)",
        ("function", "calls", "own s", "own share", "cumulative s"),
        caption=f"{profile['total_s']:.2f} s profiled in all (cProfile slows Python-level calls).",
    )
    for entry in profile["top"]:
        table.rows.append(
            (
                entry["function"],
                str(entry["calls"]),
                f"{entry['own_s']:.3f}",
                f"{entry['own_share']:.0%}",
                f"{entry['cumulative_s']:.3f}",
            )
        )
    return table


def bench_tables(results: dict[str, Any]) -> list[TableData]:
    """Every table the results allow, in reading order."""
    tables = []
    if "live" in results:
        tables.append(live_table(results["live"]))
    if "mamba" in results:
        tables.append(mamba_table(results["mamba"]))
    if "comparison" in results:
        tables.append(transformer_table(results["transformer"], results["comparison"]))
    if "batching" in results:
        tables.append(batching_table(results["batching"]))
    if "lab" in results:
        tables += [lab_batching_table(results["lab"]), lab_realtime_table(results["lab"])]
    if any(key in results for key in THROUGHPUT_PATHS):
        tables.append(throughput_table(results))
    if "archive" in results:
        tables.append(archive_table(results["archive"]))
    for key in ("file", "lsl"):
        if key in results:
            tables.append(profile_table(results[key]["profile"], THROUGHPUT_PATHS[key]))
    if "startup" in results:
        tables.append(startup_table(results["startup"]))
    return tables


def _verdict(flat: bool) -> str:
    return "flat" if flat else "GROWS"


def soak_table(soak: dict[str, Any]) -> TableData:
    flat = soak["flatness"]

    caption = (
        f"RSS {flat['rss_first_mb']:.1f} MiB at the end of the first interval, {flat['rss_last_mb']:.1f} MiB "
        f"at the end (slope {flat['rss_slope_mb_per_h']:+.3f} MiB/h): "
        f"memory {_verdict(flat['memory_flat'])}. "
        f"Last quarter over first quarter: median latency {flat['latency_ratio']:.2f} "
        f"({_verdict(flat['latency_flat'])}), CPU time per epoch {flat['cpu_ratio']:.2f} "
        f"({_verdict(flat['cpu_flat'])})."
    )
    table = TableData(
        f"Soak: {soak['hours']:g} h of synthetic EEG at {soak['sfreq_hz']:g} Hz through StagingPipeline",
        ("stream", "epochs", "RSS", "median ms", "p99 ms", "CPU ms/epoch", "x real time"),
        caption=caption,
    )
    for row in soak["intervals"]:
        table.rows.append(
            (
                hours(round(row["hours"], 3)),
                str(row["epochs"]),
                f"{row['rss_mb']:.1f} MiB",
                ms(row["latency_ms"]["median_ms"]),
                ms(row["latency_ms"]["p99_ms"]),
                ms(row["cpu_ms_per_epoch"]),
                f"{row['x_realtime']:,.0f}x",
            )
        )
    return table


def write_results(folder: Path, stem: str, json_text: str, markdown: str) -> list[Path]:
    """``folder/stem.json`` and ``folder/stem.md``."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        paths = [folder / f"{stem}.json", folder / f"{stem}.md"]
        for path, text in zip(paths, (json_text, markdown), strict=True):
            path.write_text(text, encoding="utf-8")
    except OSError as error:
        raise OutputError(f"cannot write the results to {folder} ({error}); pass another --out.") from error
    return paths
