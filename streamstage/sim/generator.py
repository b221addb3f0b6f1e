"""Synthetic EEG from a hypnogram, one 30-s epoch at a time.

Every epoch is drawn from its own random generator, seeded by ``(seed, epoch index)``, as a segment that
runs ``crossfade_s`` past the epoch's end. The overhanging tail fades out (cos) while the next epoch's
segment fades in (sin), an equal-power cross-fade: stage changes are smooth, the background has no seams,
and sample values depend on nothing but the seed, the rate and the two epochs' stages. So a night can be
streamed in chunks of any size, with memory bounded by one epoch and one chunk, and give identical samples.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
from scipy.special import ndtri

from streamstage.errors import ConfigError, HypnogramError
from streamstage.sim import spectra
from streamstage.sim.events import MAX_ARTIFACT_S, TEMPLATES, draw_artifact
from streamstage.sim.montage import ALPHA, CORTEX, EMG, SOURCES, Montage, resolve_montage
from streamstage.sim.profiles import ALPHA_HZ, PROFILES, StageProfile

EPOCH_S = 30.0
SFREQ_RANGE_HZ = (50.0, 1000.0)
SENSOR_NOISE_UV = 1.5
"""Independent per-electrode noise, so that channels sharing sources are never identical."""

ENVELOPE_CUTOFF_HZ = 0.25
"""Burst envelopes (alpha, muscle tone) change over seconds, not faster."""

_ROWS = ("cortex", "alpha", "emg", "alpha_drive", "emg_drive")
"""Noise rows drawn per segment before the per-channel sensor noise rows."""


class SyntheticEEG:
    """A synthetic night in µV that follows ``hypnogram`` (one code per 30-s epoch: 0 W, 1 N1, 2 N2, 3 N3,
    4 REM, -1 unscored), for benchmarks, soak tests and the demo. Arrays are (n_channels, n_samples)
    float32, channels named by :attr:`ch_names`.

    ``artifact_rate_per_h`` sets movement bursts and electrode pops per hour; unscored epochs get extra.
    """

    def __init__(
        self,
        hypnogram: Sequence[int] | np.ndarray,
        sfreq: float = 100.0,
        *,
        seed: int = 0,
        montage: str | Montage = "fpz-cz",
        artifact_rate_per_h: float = 4.0,
        crossfade_s: float = 4.0,
    ) -> None:
        self.hypnogram = _validated_hypnogram(hypnogram)
        if not SFREQ_RANGE_HZ[0] <= sfreq <= SFREQ_RANGE_HZ[1]:
            raise ConfigError(f"Sampling rate {sfreq} Hz is outside {SFREQ_RANGE_HZ} Hz; pick one inside it.")
        if not 0.0 < crossfade_s <= EPOCH_S / 3:
            raise ConfigError(f"crossfade_s={crossfade_s} must be above 0 and at most {EPOCH_S / 3} s.")
        if artifact_rate_per_h < 0:
            raise ConfigError(f"artifact_rate_per_h={artifact_rate_per_h} must be 0 or more.")
        if not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ConfigError(f"seed={seed!r} must be a non-negative integer.")
        self.sfreq = float(sfreq)
        self.seed = int(seed)
        self.montage = resolve_montage(montage)
        self.artifact_rate_per_h = float(artifact_rate_per_h)
        self._mixing = self.montage.matrix
        self._n_fade = max(1, round(crossfade_s * self.sfreq))
        self._n_carry = max(self._n_fade, round(MAX_ARTIFACT_S * self.sfreq))
        fade = np.pi / 2 * (np.arange(self._n_fade) + 0.5) / self._n_fade
        self._fade_in, self._fade_out = np.sin(fade), np.cos(fade)
        self._amplitudes: dict[tuple[int, int], np.ndarray] = {}

    @property
    def ch_names(self) -> tuple[str, ...]:
        return self.montage.ch_names

    @property
    def n_epochs(self) -> int:
        return len(self.hypnogram)

    @property
    def n_samples(self) -> int:
        return self._epoch_start(self.n_epochs)

    @property
    def duration_s(self) -> float:
        return self.n_epochs * EPOCH_S

    def generate(self) -> np.ndarray:
        """The whole night at once; for short nights (use :meth:`iter_chunks` for long ones)."""
        night = np.empty((len(self.ch_names), self.n_samples), dtype=np.float32)
        for index, epoch in enumerate(self._iter_epochs()):
            night[:, self._epoch_start(index) : self._epoch_start(index + 1)] = epoch
        return night

    def iter_chunks(self, chunk_s: float) -> Iterator[np.ndarray]:
        """Chunks of ``chunk_s`` seconds (boundaries rounded to samples, the last one shorter), lazily."""
        if round(chunk_s * self.sfreq) < 1:
            raise ConfigError(f"chunk_s={chunk_s} is shorter than one sample at {self.sfreq} Hz.")
        pieces: list[np.ndarray] = []
        buffered, yielded, n_chunks = 0, 0, 1
        for epoch in self._iter_epochs():
            pieces.append(epoch)
            buffered += epoch.shape[1]
            while (end := min(round(n_chunks * chunk_s * self.sfreq), self.n_samples)) <= yielded + buffered:
                pending = pieces[0] if len(pieces) == 1 else np.concatenate(pieces, axis=1)
                cut = end - yielded
                yield np.ascontiguousarray(pending[:, :cut])
                pieces, buffered = [pending[:, cut:]], pending.shape[1] - cut
                yielded, n_chunks = end, n_chunks + 1
                if yielded == self.n_samples:
                    return

    def _epoch_start(self, index: int) -> int:
        return round(index * EPOCH_S * self.sfreq)

    def _iter_epochs(self) -> Iterator[np.ndarray]:
        carry = np.zeros((len(self.ch_names), self._n_carry))
        for index in range(self.n_epochs):
            n_epoch = self._epoch_start(index + 1) - self._epoch_start(index)
            block = self._epoch_block(index, n_epoch)
            block[:, : self._n_carry] += carry
            carry = block[:, n_epoch:]
            yield block[:, :n_epoch].astype(np.float32)

    def _epoch_block(self, index: int, n_epoch: int) -> np.ndarray:
        """Epoch ``index`` faded in and out, with ``n_carry`` samples of tail for the next epoch to add."""
        rng = np.random.default_rng((self.seed, index))
        code = int(self.hypnogram[index])
        profile = PROFILES[code]
        n_segment = n_epoch + self._n_fade
        amplitudes = self._segment_amplitudes(code, n_segment)
        noise = rng.standard_normal((2, *amplitudes.shape))
        rows = np.fft.irfft((noise[0] + 1j * noise[1]) * (amplitudes / np.sqrt(2.0)), n=n_segment, axis=-1)
        cortex, alpha, emg, alpha_drive, emg_drive = rows[: len(_ROWS)]

        sources = np.zeros((len(SOURCES), n_segment))
        sources[CORTEX] = cortex
        if profile.alpha_burst_fraction > 0:
            threshold = ndtri(1.0 - profile.alpha_burst_fraction)
            sources[ALPHA] = alpha * 0.5 * (1.0 + np.tanh(2.0 * (alpha_drive - threshold)))
        sources[EMG] = emg * (1.0 + 0.5 * np.tanh(emg_drive))
        for rate in profile.events:
            source, template = TEMPLATES[rate.kind]
            for _ in range(rng.poisson(rate.per_epoch)):
                wave = template(rng, self.sfreq, rng.uniform(*rate.amp_uv))
                start = rng.integers(n_segment - wave.size + 1)
                sources[source, start : start + wave.size] += wave

        segment = self._mixing @ sources + rows[len(_ROWS) :]
        if index > 0:
            segment[:, : self._n_fade] *= self._fade_in
        segment[:, n_epoch:] *= self._fade_out

        block = np.zeros((len(self.ch_names), n_epoch + self._n_carry))
        block[:, :n_segment] = segment
        per_epoch = self.artifact_rate_per_h * EPOCH_S / 3600.0 + profile.artifacts_per_epoch
        for _ in range(rng.poisson(per_epoch)):
            artifact = draw_artifact(rng, self.sfreq, len(self.ch_names))
            start = rng.integers(n_epoch)
            block[:, start : start + artifact.shape[1]] += artifact
        return block

    def _segment_amplitudes(self, code: int, n_segment: int) -> np.ndarray:
        """Per-bin amplitudes of every noise row for one stage and segment length (cached: few distinct)."""
        key = (code, n_segment)
        if key not in self._amplitudes:
            freqs_hz = np.fft.rfftfreq(n_segment, 1.0 / self.sfreq)
            densities = _row_densities(PROFILES[code], freqs_hz, len(self.ch_names))
            self._amplitudes[key] = spectra.bin_amplitudes(densities, self.sfreq, n_segment)
        return self._amplitudes[key]


def _row_densities(profile: StageProfile, freqs_hz: np.ndarray, n_channels: int) -> np.ndarray:
    """Densities of the rows in ``_ROWS`` order, then one sensor-noise row per channel."""
    cortex = spectra.pink_density(freqs_hz, profile.pink_uv)
    for band in profile.bands:
        cortex = cortex + spectra.band_density(freqs_hz, band.lo_hz, band.hi_hz, band.rms_uv)
    drive = spectra.lowpass_density(freqs_hz, ENVELOPE_CUTOFF_HZ)
    rows = [
        cortex,
        spectra.band_density(freqs_hz, *ALPHA_HZ, profile.alpha_burst_uv),
        spectra.emg_density(freqs_hz, profile.emg_uv),
        drive,
        drive,
    ]
    rows += [spectra.pink_density(freqs_hz, SENSOR_NOISE_UV)] * n_channels
    return np.stack(rows)


def _validated_hypnogram(hypnogram: Sequence[int] | np.ndarray) -> np.ndarray:
    codes = np.asarray(hypnogram)
    if codes.ndim != 1 or codes.size == 0:
        raise HypnogramError("The hypnogram must be a non-empty sequence of one stage code per 30-s epoch.")
    if not np.issubdtype(codes.dtype, np.number) or not np.all(np.isin(codes, list(PROFILES))):
        bad = sorted({str(code) for code in codes.tolist() if code not in PROFILES})[:5]
        raise HypnogramError(
            f"Unknown stage codes {bad} in the hypnogram; use 0 W, 1 N1, 2 N2, 3 N3, 4 REM or -1 unscored."
        )
    return codes.astype(np.int64)


def generate(
    hypnogram: Sequence[int] | np.ndarray,
    sfreq: float = 100.0,
    *,
    seed: int = 0,
    montage: str | Montage = "fpz-cz",
    artifact_rate_per_h: float = 4.0,
    crossfade_s: float = 4.0,
) -> np.ndarray:
    """A short synthetic night as a (n_channels, n_samples) float32 µV array; see :class:`SyntheticEEG`."""
    return SyntheticEEG(
        hypnogram,
        sfreq,
        seed=seed,
        montage=montage,
        artifact_rate_per_h=artifact_rate_per_h,
        crossfade_s=crossfade_s,
    ).generate()
