"""What a recording device does to the clean leads: the artefacts IDB is about.

In the order a real recording chain applies them: electrode and amplifier
noise (coloured) and baseline wander enter at the input; the device's own
band-pass filters them (zero-phase digital or causal analogue-style, which
distorts the ST segment); the amplifier's calibration error scales the
signal; residual mains hum (what the device's notch leaves) is added; the
ADC rounds to its resolution. The artefact-strength knob moves each device
between :data:`~cape.simulator.cohorts.REFERENCE_DEVICE` (strength 0) and its
own settings (strength 1) and beyond.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from scipy import fft, signal

from cape.simulator.cohorts import REFERENCE_DEVICE, DeviceSpec

# Recordings are synthesised with this much extra signal on each side and
# cropped after filtering, which absorbs the wrap-around of filtering in the
# frequency domain (the band edges' impulse responses are short; the clean
# leads carry no drift for a long high-pass tail to act on).
PAD_SECONDS = 1.0


def _geometric(reference: float, own: float, strength: float) -> float:
    return float(reference * (own / reference) ** strength)


def effective_device(device: DeviceSpec, strength: float) -> DeviceSpec:
    """The device as it acts at a given artefact strength.

    Continuous settings interpolate (strength in [0, 1]) or extrapolate
    (> 1) from the reference device: geometrically for corner frequencies,
    noise, wander and ADC step; linearly for hum, gain error and noise
    colour. Discrete settings (sampling rate, record length, filter phase)
    are the reference's at strength 0 and the device's otherwise.

    Args:
        device: the device as specified.
        strength: global x cohort artefact strength, >= 0.

    Raises:
        ValueError: negative strength.
    """
    if strength < 0:
        raise ValueError(f"artefact strength must be >= 0, got {strength}")
    ref = REFERENCE_DEVICE
    discrete = device if strength > 0 else ref
    nyquist = discrete.sampling_rate_hz / 2
    lowpass = min(_geometric(ref.lowpass_hz, device.lowpass_hz, strength), 0.85 * nyquist)
    highpass = min(_geometric(ref.highpass_hz, device.highpass_hz, strength), 2.0, lowpass / 4)
    return device.model_copy(
        update={
            "sampling_rate_hz": discrete.sampling_rate_hz,
            "record_seconds": discrete.record_seconds,
            "filter_phase": discrete.filter_phase,
            "highpass_hz": highpass,
            "lowpass_hz": lowpass,
            "hum_uv": strength * device.hum_uv,
            "noise_uv": _geometric(ref.noise_uv, max(device.noise_uv, 0.1), strength),
            "noise_colour": float(
                np.clip(
                    ref.noise_colour + strength * (device.noise_colour - ref.noise_colour), 0, 2
                )
            ),
            "wander_mv": _geometric(ref.wander_mv, max(device.wander_mv, 1e-3), strength),
            "adc_lsb_uv": min(_geometric(ref.adc_lsb_uv, device.adc_lsb_uv, strength), 50.0),
            "gain_error": float(np.clip(strength * device.gain_error, -0.5, 0.5)),
            "gain_jitter": ref.gain_jitter + strength * (device.gain_jitter - ref.gain_jitter),
        }
    )


@lru_cache(maxsize=64)
def bandpass_sos(sampling_rate_hz: float, highpass_hz: float, lowpass_hz: float) -> np.ndarray:
    """Second-order sections of the device band-pass.

    A first-order high-pass (the RC coupling of an ECG amplifier) and a
    second-order Butterworth low-pass. Zero-phase devices run it forwards
    and backwards (squared magnitude, no phase shift).
    """
    high = signal.butter(1, highpass_hz, btype="highpass", fs=sampling_rate_hz, output="sos")
    low = signal.butter(2, lowpass_hz, btype="lowpass", fs=sampling_rate_hz, output="sos")
    return np.concatenate([high, low])


def phasors(
    freqs_hz: np.ndarray, n_samples: int, sampling_rate_hz: float, t0_s: float = 0.0
) -> np.ndarray:
    """``exp(2 pi i f t)`` on the sample grid, ``(..., n_samples)`` complex64.

    Built from two short tables by angle addition (one complex product per
    sample), which is several times cheaper than evaluating sin and cos.
    """
    block = max(1, math.isqrt(n_samples))
    n_blocks = -(-n_samples // block)
    omega = 2 * math.pi * np.asarray(freqs_hz, dtype=float)[..., None] / sampling_rate_hz
    fine = np.exp(1j * omega * np.arange(block)).astype(np.complex64)
    coarse = np.exp(1j * omega * (np.arange(n_blocks) * block + t0_s * sampling_rate_hz)).astype(
        np.complex64
    )
    table = coarse[..., :, None] * fine[..., None, :]
    table = table.reshape(*table.shape[:-2], -1)
    return table if table.shape[-1] == n_samples else table[..., :n_samples]


def _noise_shape(freqs: np.ndarray, colour: float, n_samples: int) -> np.ndarray:
    """Spectral amplitude of unit-RMS noise ~ 1/f^colour (flat below 0.5 Hz, no DC).

    Scaled so that complex white coefficients times this shape give, after
    ``irfft``, a signal whose expected mean square is 1 (Parseval).
    """
    shape = np.maximum(freqs, 0.5) ** (-colour / 2)
    shape[0] = 0.0
    weight = np.full(freqs.shape, 2.0)
    weight[0] = 1.0
    if n_samples % 2 == 0:
        weight[-1] = 1.0
    power = 2.0 * np.sum(weight * shape**2) / n_samples**2
    return shape / np.sqrt(power)


def device_response(device: DeviceSpec, freqs: np.ndarray) -> np.ndarray:
    """Complex frequency response of the device filter at ``freqs`` (Hz).

    Zero-phase devices (forward-backward) have the real response ``|H|^2``.
    """
    sos = bandpass_sos(float(device.sampling_rate_hz), device.highpass_hz, device.lowpass_hz)
    _, response = signal.sosfreqz(sos, worN=freqs, fs=float(device.sampling_rate_hz))
    return np.abs(response) ** 2 if device.filter_phase == "zero" else response


def apply_device(
    leads: np.ndarray,
    device: DeviceSpec,
    mains_hz: float,
    noise_factor: np.ndarray,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Record clean leads with a device.

    The chain is linear up to the ADC, so it runs in the frequency domain:
    the padded clean leads and the coloured noise are added as spectra and
    multiplied by the device response; the wander sinusoids go through the
    same response analytically. Padding absorbs the circular wrap-around.

    Args:
        leads: ``(n, 8, T_padded)`` clean leads I, II, V1-V6, mV, sampled at
            ``device.sampling_rate_hz`` with :data:`PAD_SECONDS` of padding on
            each side.
        device: the effective device (see :func:`effective_device`).
        mains_hz: mains frequency of the site (50 or 60 Hz).
        noise_factor: ``(n,)`` per-recording multiplier of the noise (patient
            movement, skin preparation).
        rng: random generator.

    Returns:
        ``(recorded, gain)``: ``(n, 8, T)`` float32 mV on the ADC grid
        (multiples of ``device.adc_lsb_uv`` µV), padding removed; and the
        ``(n,)`` gain each recording was scaled by.
    """
    fs = float(device.sampling_rate_hz)
    n, n_leads, total = leads.shape
    pad = round(PAD_SECONDS * fs)
    freqs = np.fft.rfftfreq(total, d=1.0 / fs)
    response = device_response(device, freqs).astype(np.complex64)
    spectrum = fft.rfft(leads.astype(np.float32, copy=False), axis=-1)
    noise_scale = (device.noise_uv / 1000.0) * _noise_shape(freqs, device.noise_colour, total)
    # Complex white coefficients: independent real and imaginary normals.
    noise = rng.standard_normal((n, n_leads, freqs.size, 2), dtype=np.float32).view(np.complex64)[
        ..., 0
    ]
    noise *= noise_factor.astype(np.float32)[:, None, None] * noise_scale.astype(np.float32)
    spectrum += noise
    spectrum *= response
    x = fft.irfft(spectrum, n=total, axis=-1)[..., pad : total - pad]
    t = (np.arange(x.shape[-1]) + pad) / fs

    # Baseline wander (respiration 0.15-0.4 Hz and a slower drift) and mains
    # hum, per lead, as sums of sines: amplitudes and phases per lead on a
    # shared sine/cosine basis, so one batched matmul adds them all.
    wander_hz = np.stack([rng.uniform(0.15, 0.4, n), rng.uniform(0.03, 0.1, n)], axis=1)  # (n, 2)
    wander_amp = device.wander_mv * rng.uniform(0.3, 1.0, (n, n_leads, 1)) * np.array([0.7, 0.5])
    wander_phase = rng.uniform(0, 2 * math.pi, (n, n_leads, 2))
    through = device_response(device, wander_hz.ravel()).reshape(n, 1, 2)
    wander_amp = wander_amp * np.abs(through)
    wander_phase = wander_phase + np.angle(through)
    freqs_all, amps, phases = [wander_hz], [wander_amp], [wander_phase]
    if device.hum_uv > 0:
        # Residual hum: per-recording level (log-normal), per-lead coupling,
        # mains within +-0.1 Hz, a weaker 3rd harmonic when below Nyquist.
        hum_hz = mains_hz + rng.uniform(-0.1, 0.1, n)
        level = (device.hum_uv / 1000.0) * np.exp(rng.normal(0, 0.5, (n, 1, 1)))
        level = level * rng.uniform(0.5, 1.0, (n, n_leads, 1))
        phase = rng.uniform(0, 2 * math.pi, (n, n_leads, 1))
        third = 0.3 if 3 * mains_hz < 0.45 * fs else 0.0
        freqs_all.append(np.stack([hum_hz, 3 * hum_hz], axis=1))
        amps.append(level * np.array([1.0, third]))
        phases.append(np.concatenate([phase, 3 * phase], axis=2))
    sine_hz = np.concatenate(freqs_all, axis=1)  # (n, k)
    amp = np.concatenate(amps, axis=2)  # (n, 8, k)
    phase = np.concatenate(phases, axis=2)
    rotor = phasors(sine_hz, x.shape[-1], fs, t[0])  # (n, k, T): cos + i sin
    basis = np.concatenate([rotor.imag, rotor.real], axis=1)
    weights = np.concatenate([amp * np.cos(phase), amp * np.sin(phase)], axis=2).astype(np.float32)
    x += weights @ basis

    gain = np.asarray(
        1.0 + device.gain_error + device.gain_jitter * rng.standard_normal(n), dtype=float
    )
    lsb = device.adc_lsb_uv / 1000.0
    # 16-bit converter: scale by the gain, round to the step, saturate at the rails.
    x *= (gain / lsb).astype(np.float32)[:, None, None]
    np.rint(x, out=x)
    np.clip(x, -32767, 32767, out=x)
    x *= np.float32(lsb)
    return x, gain
