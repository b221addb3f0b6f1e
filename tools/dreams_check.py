"""Real raw EEG from another lab through the whole streaming path: the DREAMS spindle excerpts.

Each excerpt (30 min, C3-A1; excerpt 3 also has FP1-A1 in its full PSG) goes through the very pipeline of
``streamstage stage``; its features are compared with the training set's (after the same causal
normalisation), and the 30-s windows that one expert stage covers are scored. DREAMS data is licensed
non-commercially with no adaptations: it is read in place, never copied into the project.

    python tools/dreams_check.py --dreams ../shared/data/dreams-spindles-dev \\
        --features ../shared/data/sleep-edf-features --out dreams.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import edfio
import numpy as np
from rich.console import Console
from rich.table import Table

from streamstage.features import FEATURE_NAMES, CausalNormalizer
from streamstage.io.hypnogram import read_hypnogram
from streamstage.model.checkpoint import load_model
from streamstage.offline import RecordingSource, recording_features, stage_recording
from streamstage.training.data import load_feature_nights
from streamstage.training.metrics import score

EXCERPTS = (  # (name, signal file, sampling rate of the text export, channel)
    ("excerpt1 C3-A1", "excerpt1.txt", 100.0, "C3-A1"),
    ("excerpt3 C3-A1", "excerpt3.txt", 50.0, "C3-A1"),
    ("excerpt3 FP1-A1", "excerpt3.edf", 50.0, "FP1-A1"),
)


def text_to_edf(text_path: Path, sfreq: float, label: str, folder: Path) -> Path:
    """The one-column µV text export as an EDF, so it takes exactly the path of `streamstage stage`."""
    values = np.loadtxt(text_path, skiprows=1)
    edf_path = folder / (text_path.stem + ".edf")
    span = float(np.abs(values).max()) * 1.1 + 1.0
    signal = edfio.EdfSignal(
        values, sampling_frequency=sfreq, label=label, physical_dimension="uV", physical_range=(-span, span)
    )
    edfio.Edf([signal]).write(edf_path)
    return edf_path


def training_distribution(features_dir: Path) -> np.ndarray:
    """Causally normalised Fpz-Cz features of every training night, stacked."""
    nights = load_feature_nights(features_dir, ["Fpz-Cz"])
    return np.concatenate([CausalNormalizer(1).transform_night(n.features)[:, 0] for n in nights])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dreams", type=Path, required=True)
    parser.add_argument("--features", type=Path, required=True)
    parser.add_argument("--model", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    console = Console()
    model = load_model(args.model)
    reference = training_distribution(args.features)
    ref_mean, ref_std = reference.mean(0), reference.std(0)
    results = []
    with tempfile.TemporaryDirectory() as scratch:
        for name, filename, sfreq, channel in EXCERPTS:
            path = args.dreams / filename
            if path.suffix == ".txt":
                path = text_to_edf(path, sfreq, channel, Path(scratch))
            source = RecordingSource.open(path, [channel])
            staged = stage_recording(source, model)
            raw, flags = recording_features(source)
            normalised = CausalNormalizer(1).transform_night(raw)[:, 0]
            truth = read_hypnogram(args.dreams / f"Hypnogram_{filename.split('.')[0]}.txt").stages
            n = min(len(truth), len(staged))
            predicted = np.array([e.stage for e in staged[:n]])
            scores = score(truth[:n].astype(np.int64), predicted)
            shift = (normalised.mean(0) - ref_mean) / ref_std
            results.append(
                {
                    "excerpt": name,
                    "channel": channel,
                    "sfreq_hz": source.sfreq,
                    "epochs": n,
                    "scored_windows": scores.n_epochs,
                    "good_quality": flags.count("good"),
                    "accuracy": round(scores.accuracy, 3),
                    "kappa": round(scores.kappa, 3),
                    "confusion": scores.confusion.tolist(),
                    "truth": [int(t) for t in truth[:n]],
                    "predicted": predicted.tolist(),
                    "feature_shift_sd": dict(zip(FEATURE_NAMES, np.round(shift, 2).tolist(), strict=True)),
                }
            )
    args.out.write_text(json.dumps(results, indent=2))
    table = Table(title="DREAMS excerpts through the streaming path (shipped model)")
    for column in ("excerpt", "windows scored", "accuracy", "kappa", "largest feature shift (SD)"):
        table.add_column(column)
    for r in results:
        worst = max(r["feature_shift_sd"].items(), key=lambda item: abs(item[1]))
        table.add_row(
            r["excerpt"],
            str(r["scored_windows"]),
            f"{r['accuracy']:.2f}",
            f"{r['kappa']:.2f}",
            f"{worst[0]} {worst[1]:+.2f}",
        )
    console.print(table)
    console.print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
