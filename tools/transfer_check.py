"""Cross-lab check: raw recordings with expert hypnograms from any lab, staged as `streamstage stage` does.

Each recording is staged cold from its first sample (the normaliser and the model know nothing of it
beforehand, as for a user who starts streamstage on it), through :func:`streamstage.offline.stage_recording`,
the code of ``streamstage stage``. Only the 30-s windows that one expert stage covers are scored. Every model
given (several seeds of one recipe, or recipes side by side) is scored per recording and pooled, and the
spread over the models is reported; accuracy by minutes since the recording's start shows how quickly a
stream joined mid-night settles. Where YASA is importable (a benchmark environment, never a dependency),
its offline classifier is scored on the very same windows.

Recordings are ``--pair RECORDING HYPNOGRAM CHANNEL`` (EDF/BDF, or a one-column µV text export whose first
line names its channel) or ``--dreams DIR``, every DREAMS-style excerpt in a folder (``excerptN.txt`` with
``Hypnogram_excerptN.txt``, and the frontal FP1-A1 of ``excerptN.edf`` where present). Data is read in
place; text exports are converted to EDF in a temporary folder that is deleted afterwards.

    python tools/transfer_check.py --dreams ../shared/data/dreams-spindles-dev \\
        --model default --model seed1.pt --out docs/results/transfer_dreams.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import edfio
import numpy as np
from rich.console import Console
from rich.table import Table
from scipy.signal import resample_poly

from streamstage.io.edf import EdfRecording
from streamstage.io.hypnogram import read_hypnogram
from streamstage.model.checkpoint import StagingModel, load_model
from streamstage.model.ensemble import EnsembleNet, networks
from streamstage.offline import RecordingSource, stage_recording
from streamstage.stats import confusion_matrix
from streamstage.training.joins import scores_by_minutes
from streamstage.training.metrics import StagingScores

FRONTAL_PSG_CHANNEL = "FP1-A1"
YASA_MIN_SFREQ_HZ = 80.0
YASA_CODES = {"W": 0, "WAKE": 0, "N1": 1, "N2": 2, "N3": 3, "R": 4, "REM": 4}
DREAMS_STEP_S = 5.0


@dataclass(frozen=True)
class Recording:
    name: str
    path: Path
    hypnogram: Path
    channel: str


def text_export_to_edf(text_path: Path, n_hypnogram_steps: int, folder: Path) -> tuple[Path, str]:
    """A one-column µV export (first line ``[LABEL]``) as an EDF; its rate follows from the duration the
    hypnogram covers, since the export does not state it."""
    with text_path.open() as handle:
        label = handle.readline().strip().strip("[]") or "EEG"
    values = np.loadtxt(text_path, skiprows=1)
    sfreq = len(values) / (n_hypnogram_steps * DREAMS_STEP_S)
    span = float(np.abs(values).max()) * 1.1 + 1.0
    signal = edfio.EdfSignal(
        values, sampling_frequency=sfreq, label=label, physical_dimension="uV", physical_range=(-span, span)
    )
    edf_path = folder / f"{text_path.stem}.edf"
    edfio.Edf([signal]).write(edf_path)
    return edf_path, label


def dreams_recordings(folder: Path, scratch: Path) -> Iterator[Recording]:
    for text in sorted(folder.glob("excerpt*.txt")):
        hypnogram = folder / f"Hypnogram_{text.stem}.txt"
        if not hypnogram.is_file():
            continue
        n_steps = len(hypnogram.read_text().split()) - 1
        edf_path, label = text_export_to_edf(text, n_steps, scratch)
        yield Recording(f"{text.stem} {label}", edf_path, hypnogram, label)
        psg = folder / f"{text.stem}.edf"
        if psg.is_file() and FRONTAL_PSG_CHANNEL in EdfRecording.open(psg).labels:
            yield Recording(f"{text.stem} {FRONTAL_PSG_CHANNEL}", psg, hypnogram, FRONTAL_PSG_CHANNEL)


def scored_windows(recording: Recording, n_epochs: int) -> np.ndarray:
    """Expert stage per 30-s window of the recording (-1 where no single stage covers it)."""
    return read_hypnogram(recording.hypnogram).aligned_to(n_epochs, on_mismatch="fit").stages.astype(np.int64)


def scores_record(scores: StagingScores) -> dict[str, Any]:
    return {
        "windows": scores.n_epochs,
        "accuracy": round(scores.accuracy, 4),
        "macro_f1": round(scores.macro_f1, 4),
        "kappa": round(scores.kappa, 4),
    }


def by_minutes(truth: list[np.ndarray], predicted: list[np.ndarray]) -> dict[str, dict[str, Any]]:
    return {k: scores_record(v) for k, v in scores_by_minutes(truth, predicted).items() if v.n_epochs}


def yasa_stages(recording: Recording, n_epochs: int) -> np.ndarray | None:
    """YASA's stages for the same windows, or None where YASA (with mne) is not installed."""
    try:
        import mne
        import yasa
    except ImportError:
        return None
    source = RecordingSource.open(recording.path, [recording.channel])
    samples, sfreq = np.concatenate(list(source.iter_chunks()))[:, 0], source.sfreq
    if sfreq < YASA_MIN_SFREQ_HZ:  # YASA refuses under 80 Hz: upsampled, no content added
        samples, sfreq = resample_poly(samples, round(100 / sfreq * 10), 10), 100.0
    info = mne.create_info([recording.channel], sfreq, ch_types=["eeg"])
    raw = mne.io.RawArray(samples[None] * 1e-6, info, verbose="error")
    with warnings.catch_warnings():  # its bundled classifiers were pickled by an older scikit-learn
        warnings.simplefilter("ignore")
        hypno = yasa.SleepStaging(raw, eeg_name=recording.channel).predict()
    labels = getattr(hypno, "hypno", hypno)  # YASA >= 0.7 returns a Hypnogram, older ones an array
    stages = np.array([YASA_CODES.get(str(s).upper(), -1) for s in labels], dtype=np.int64)
    return np.pad(stages, (0, max(0, n_epochs - len(stages))), constant_values=-1)[:n_epochs]


def score_scorer(
    name: str, predictions: dict[str, np.ndarray], truths: dict[str, np.ndarray]
) -> dict[str, Any]:
    per_recording = {
        recording: scores_record(StagingScores(confusion_matrix(truths[recording], predicted)))
        for recording, predicted in predictions.items()
    }
    pooled = StagingScores(
        confusion_matrix(
            np.concatenate([truths[r] for r in predictions]), np.concatenate(list(predictions.values()))
        )
    )
    return {
        "scorer": name,
        "pooled": scores_record(pooled),
        "per_recording": per_recording,
        "by_minutes_since_start": by_minutes([truths[r] for r in predictions], list(predictions.values())),
        "predicted": {r: p.tolist() for r, p in predictions.items()},
    }


def ensemble_members(model: StagingModel) -> list[StagingModel]:
    """Each member of an ensemble as a model of its own (nothing for a single network)."""
    if not isinstance(model.net, EnsembleNet):
        return []
    return [
        StagingModel(net=net, normalizer=model.normalizer, source=f"{model.source} member {i + 1}")
        for i, net in enumerate(networks(model.net))
    ]


def spread(results: list[dict[str, Any]]) -> dict[str, float]:
    kappas = np.array([r["pooled"]["kappa"] for r in results])
    accuracies = np.array([r["pooled"]["accuracy"] for r in results])
    return {
        "n_models": len(results),
        "kappa_mean": round(float(kappas.mean()), 4),
        "kappa_sd": round(float(kappas.std(ddof=1)), 4) if len(kappas) > 1 else 0.0,
        "kappa_min": round(float(kappas.min()), 4),
        "kappa_max": round(float(kappas.max()), 4),
        "accuracy_mean": round(float(accuracies.mean()), 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dreams", type=Path, help="folder of DREAMS-style excerpts")
    parser.add_argument(
        "--pair", nargs=3, action="append", default=[], metavar=("RECORDING", "HYPNOGRAM", "CHANNEL")
    )
    parser.add_argument(
        "--model",
        action="append",
        help="bundled model name or checkpoint; repeat for seeds (default: default)",
    )
    parser.add_argument(
        "--members", action="store_true", help="also score each member of an ensemble alone (its seeds)"
    )
    parser.add_argument("--no-yasa", action="store_true", help="skip YASA even where it is installed")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    if not args.dreams and not args.pair:
        parser.error("give --dreams DIR or at least one --pair RECORDING HYPNOGRAM CHANNEL")
    console = Console(width=160)
    models = [load_model(m) for m in (args.model or ["default"])]
    if args.members:
        models += [member for model in models for member in ensemble_members(model)]
    with tempfile.TemporaryDirectory() as scratch:
        recordings = list(dreams_recordings(args.dreams, Path(scratch))) if args.dreams else []
        recordings += [Recording(Path(p).name, Path(p), Path(h), c) for p, h, c in args.pair]
        truths: dict[str, np.ndarray] = {}
        model_results = []
        for model in models:
            predictions = {}
            for recording in recordings:
                source = RecordingSource.open(recording.path, [recording.channel])
                staged = stage_recording(source, model)
                truths[recording.name] = scored_windows(recording, len(staged))
                predictions[recording.name] = np.array([e.stage for e in staged], dtype=np.int64)
            model_results.append(score_scorer(model.source, predictions, truths))
        peers = []
        if not args.no_yasa:
            yasa = {r.name: yasa_stages(r, len(truths[r.name])) for r in recordings}
            if all(stages is not None for stages in yasa.values()):
                peers.append(score_scorer("YASA SleepStaging (offline)", yasa, truths))  # type: ignore[arg-type]
    seeds = [r for r, m in zip(model_results, models, strict=True) if not isinstance(m.net, EnsembleNet)]
    record = {
        "recordings": [r.name for r in recordings],
        "models": model_results,
        "spread": spread(seeds or model_results),  # over single networks (seeds) where there are some
    }
    record["peers"] = peers or "YASA not installed in this environment"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=1))
    table = Table(title="cross-lab check: cold start, 30-s windows one expert stage covers (kappa)")
    table.add_column("scorer")
    for name in (*(r.name for r in recordings), "pooled kappa", "pooled acc"):
        table.add_column(name, justify="right")
    for result in model_results + peers:
        table.add_row(
            result["scorer"],
            *(f"{result['per_recording'][r.name]['kappa']:.2f}" for r in recordings),
            f"{result['pooled']['kappa']:.3f}",
            f"{result['pooled']['accuracy']:.3f}",
        )
    console.print(table)
    s = record["spread"]
    console.print(
        f"single networks: pooled kappa mean {s['kappa_mean']:.3f} ± {s['kappa_sd']:.3f} "
        f"(min {s['kappa_min']:.3f}, max {s['kappa_max']:.3f}) over {s['n_models']}; wrote {args.out}"
    )


if __name__ == "__main__":
    main()
