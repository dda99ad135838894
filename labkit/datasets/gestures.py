"""IMU gestures as the Nano 33 BLE Sense records them, synthetic or read from capture CSVs.

The format is that of Arduino's IMU_Capture sketch: it waits until the acceleration
|aX|+|aY|+|aZ| crosses 2.5 g, then prints 119 samples (one second at 119 Hz) of
``aX,aY,aZ,gX,gY,gZ`` and a blank line. The synthetic generator simulates the same thing
physically: a hand trajectory and orientation, differentiated into specific force (with
gravity) and angular rate in the board frame, then cut at the trigger. So a lesson can train
on synthetic data first and swap in the students' own captures without changing code.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from labkit.datasets.base import Dataset, DatasetInfo
from labkit.errors import DatasetError
from labkit.fileio import write_atomic

CHANNELS = ("aX", "aY", "aZ", "gX", "gY", "gZ")
UNITS = ("g", "g", "g", "deg/s", "deg/s", "deg/s")
SAMPLES_PER_GESTURE = 119
SAMPLE_RATE_HZ = 119.0
TRIGGER_G = 2.5
ACCEL_RANGE_G = 4.0
GYRO_RANGE_DPS = 2000.0

# What a reading can be at all: the largest full scale the boards' IMUs can be set to (LSM9DS1 and
# BMI270: ±16 g, ±2000 deg/s). A value beyond it is a unit or parsing mistake, not a movement.
SENSOR_LIMITS = (16.0,) * 3 + (2000.0,) * 3
MS2_SUSPECT_G = 5.0  # median |a| of a recording in g stays near 1-2; in m/s² it is about 9.8

DEFAULT_CLASSES = ("punch", "flex", "wave", "circle")
HEADER = ",".join(CHANNELS)

_STANDARD_GRAVITY = 9.80665  # m/s^2 per g
_DT = 1.0 / SAMPLE_RATE_HZ
_PRE_ROLL = 8  # samples at rest before the movement starts
_SIM_LEN = _PRE_ROLL + 2 * SAMPLES_PER_GESTURE  # room for a late trigger plus a full window
_ACCEL_NOISE_G = 0.02
_GYRO_NOISE_DPS = 2.0
_MAX_HAND_TILT_DEG = 25.0
_MAX_RETRIES = 50
_WOBBLE_M = 0.04  # typical size of the random wobble on top of a gesture
_WOBBLE_RAD = 0.2

# A gesture maps normalised time u in [0, 1] (shape (m, L)), an amplitude scale (m, 1) and the
# rng to the hand's position in metres and its roll/pitch/yaw in radians, each (m, L, 3).
# World frame: X forward, Y left, Z up; at rest the board lies flat and reads aZ = +1 g.
GestureFn = Callable[[np.ndarray, np.ndarray, np.random.Generator], tuple[np.ndarray, np.ndarray]]


# Real movements start and stop smoothly (no jump in acceleration), so every profile below has
# zero velocity and acceleration at u = 0 and u = 1; otherwise the differentiated signal spikes.
def _smootherstep(u: np.ndarray) -> np.ndarray:
    """0 -> 1 with zero first and second derivatives at both ends."""
    return u**3 * (u * (6 * u - 15) + 10)


def _out_and_back(u: np.ndarray) -> np.ndarray:
    """0 -> 1 -> 0, pausing briefly at the far end (full extension)."""
    return _smootherstep(1 - np.abs(2 * u - 1))


def _envelope(u: np.ndarray, ramp: float = 0.2) -> np.ndarray:
    """Fades an oscillation in over the first ``ramp`` of the gesture and out over the last."""
    return _smootherstep(np.minimum(1.0, np.minimum(u, 1 - u) / ramp))


def _punch(u: np.ndarray, amp: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Jab forward ~30 cm and back; the fist turns (roll) as the arm extends."""
    out = _out_and_back(u)
    zero = np.zeros_like(u)
    pos = np.stack([0.30 * amp * out, zero, 0.04 * amp * out], axis=-1)
    ang = np.stack([0.6 * amp * out, -0.15 * amp * out, zero], axis=-1)
    return pos, ang


def _flex(u: np.ndarray, amp: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Arm curl: the forearm (30 cm) pitches up ~100 degrees about the elbow and back down."""
    theta = np.minimum(1.75 * amp, 2.4) * _out_and_back(u)
    zero = np.zeros_like(u)
    pos = 0.30 * np.stack([np.cos(theta) - 1.0, zero, np.sin(theta)], axis=-1)
    ang = np.stack([zero, -theta, zero], axis=-1)  # pitch -theta turns the board's X axis upwards
    return pos, ang


def _wave(u: np.ndarray, amp: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Side-to-side along Y for 2-3 cycles, the wrist rolling with it."""
    cycles = rng.uniform(2.0, 3.0, size=(len(u), 1))
    swing = np.sin(2 * np.pi * cycles * u) * _envelope(u)
    zero = np.zeros_like(u)
    pos = np.stack([zero, 0.10 * amp * swing, zero], axis=-1)
    ang = np.stack([0.5 * amp * swing, zero, zero], axis=-1)
    return pos, ang


def _circle(u: np.ndarray, amp: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One loop (or a little more) of a vertical circle in front of the body: Y and Z in quadrature."""
    loops = rng.uniform(1.0, 1.25, size=(len(u), 1))
    phase = 2 * np.pi * loops * _smootherstep(u)  # speeds up, then slows to rest
    radius = 0.20 * amp
    zero = np.zeros_like(u)
    pos = np.stack([zero, radius * np.sin(phase), radius * (1 - np.cos(phase))], axis=-1)
    ang = np.stack([0.25 * amp * np.sin(phase), zero, 0.15 * amp * (1 - np.cos(phase))], axis=-1)
    return pos, ang


def _updown(u: np.ndarray, amp: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Vertical pumping along Z for 1.5-2.5 cycles, the wrist nodding slightly."""
    cycles = rng.uniform(1.5, 2.5, size=(len(u), 1))
    pump = np.sin(2 * np.pi * cycles * u) * _envelope(u)
    zero = np.zeros_like(u)
    pos = np.stack([zero, zero, 0.12 * amp * pump], axis=-1)
    ang = np.stack([zero, 0.2 * amp * pump, zero], axis=-1)
    return pos, ang


# name -> (typical duration in seconds, trajectory)
GESTURES: dict[str, tuple[float, GestureFn]] = {
    "punch": (0.45, _punch),
    "flex": (0.75, _flex),
    "wave": (0.90, _wave),
    "circle": (0.80, _circle),
    "updown": (0.85, _updown),
}


def trigger_index(window: np.ndarray, threshold: float = TRIGGER_G) -> int:
    """First sample where |aX|+|aY|+|aZ| >= threshold (the capture sketch's start), or -1."""
    window = np.asarray(window)
    if window.ndim != 2 or window.shape[1] < 3:
        raise DatasetError(f"trigger_index expects a (samples, channels>=3) window, got shape {window.shape}")
    hits = np.flatnonzero(np.abs(window[:, :3]).sum(axis=1) >= threshold)
    return int(hits[0]) if hits.size else -1


def _rotation(roll: np.ndarray, pitch: np.ndarray, yaw: np.ndarray) -> np.ndarray:
    """Rz(yaw) @ Ry(pitch) @ Rx(roll) for arrays of angles, shape (..., 3, 3)."""
    cr, sr = np.cos(roll), np.sin(roll)
    cp, sp = np.cos(pitch), np.sin(pitch)
    cy, sy = np.cos(yaw), np.sin(yaw)
    return np.stack(
        [
            np.stack([cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr], axis=-1),
            np.stack([sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr], axis=-1),
            np.stack([-sp, cp * sr, cp * cr], axis=-1),
        ],
        axis=-2,
    )


def _imu_readings(pos: np.ndarray, ang: np.ndarray, board_in_hand: np.ndarray) -> np.ndarray:
    """Accelerometer (g, gravity included) and gyroscope (deg/s) in the board frame, (m, L, 6)."""
    pos = np.pad(pos, ((0, 0), (1, 1), (0, 0)), mode="edge")
    accel_world = (pos[:, 2:] - 2 * pos[:, 1:-1] + pos[:, :-2]) / (_DT**2 * _STANDARD_GRAVITY)
    accel_world[..., 2] += 1.0  # an accelerometer measures specific force: +1 g up at rest

    hand = _rotation(ang[..., 0], ang[..., 1], ang[..., 2])  # world <- hand, (m, L, 3, 3)
    accel_hand = np.einsum("mlji,mlj->mli", hand, accel_world)
    padded = np.pad(hand, ((0, 0), (1, 1), (0, 0), (0, 0)), mode="edge")
    # Body angular rate: the skew part of R^T dR/dt (central difference).
    w = np.einsum("mlji,mljk->mlik", hand, padded[:, 2:] - padded[:, :-2]) / (2 * _DT)
    gyro_hand = np.degrees(
        0.5 * np.stack([w[..., 2, 1] - w[..., 1, 2], w[..., 0, 2] - w[..., 2, 0], w[..., 1, 0] - w[..., 0, 1]], -1)
    )
    # The board sits rotated in the hand: the same rotation applies to both sensors.
    accel = np.einsum("mji,mlj->mli", board_in_hand, accel_hand)
    gyro = np.einsum("mji,mlj->mli", board_in_hand, gyro_hand)
    return np.concatenate([accel, gyro], axis=-1)


def _simulate(
    name: str,
    persons: np.ndarray,
    people: dict[str, np.ndarray],
    noise: float,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Record one gesture per entry of ``persons``; returns windows and which ones triggered."""
    m = len(persons)
    duration_s, trajectory = GESTURES[name]
    amp = people["amp"][persons] * rng.normal(1.0, 0.1, m)
    duration = duration_s * people["speed"][persons] * rng.normal(1.0, 0.1, m)
    tilt = people["tilt"][persons] + rng.normal(0.0, np.radians(6.0), (m, 3))

    t = np.arange(_SIM_LEN) - _PRE_ROLL
    u = np.clip(t / (duration[:, None] * SAMPLE_RATE_HZ), 0.0, 1.0)
    pos, ang = trajectory(u, amp[:, None], rng)
    # No two repetitions are alike: a slow random wobble of the hand while it moves.
    seconds = (u * duration[:, None])[..., None]
    envelope = _envelope(u, ramp=0.3)[..., None]
    for part, size in ((pos, _WOBBLE_M), (ang, _WOBBLE_RAD)):
        freq = rng.uniform(0.5, 2.5, (m, 1, 3))
        phase = rng.uniform(0, 2 * np.pi, (m, 1, 3))
        part += rng.normal(0.0, size, (m, 1, 3)) * envelope * np.sin(2 * np.pi * freq * seconds + phase)
    signal = _imu_readings(pos, ang, _rotation(tilt[:, 0], tilt[:, 1], tilt[:, 2]))
    return _sense_and_trigger(signal, noise, rng)


# ---------------------------------------------------------------------------------------------
# Calibrated people (make_gestures(calibrated=True)): grips, start and end poses and styles as real recordings show them
#
# Real Nano 33 BLE Sense recordings (punch and flex, 4 people) differ from the simple model above in
# ways that decide whether a model works for a new person: people hold the board flat, tilted or
# upside down, with its X or its Y axis along the forearm; a punch swings the fist about the vertical
# (or, for some, the lateral) axis as much as it pushes it forward; many end a gesture in another pose
# than they started (the arm left out, the forearm left up), so the board's orientation in the last
# samples differs per class *and* per person; and peaks are gentler (median 2.2-3.9 g per person).
# Each person below is one draw of those habits; every repetition varies a little around them.


def _axis_rotation(axis: int, angle: np.ndarray) -> np.ndarray:
    """Rotation by ``angle`` (radians, any shape) about world axis 0 (X), 1 (Y) or 2 (Z): (..., 3, 3)."""
    c, s = np.cos(angle), np.sin(angle)
    one, zero = np.ones_like(angle), np.zeros_like(angle)
    i, j = [k for k in range(3) if k != axis]
    rows = [[None] * 3 for _ in range(3)]
    rows[axis][axis] = one
    rows[axis][i] = rows[axis][j] = rows[i][axis] = rows[j][axis] = zero
    rows[i][i], rows[i][j], rows[j][i], rows[j][j] = c, -s, s, c
    return np.stack([np.stack(r, axis=-1) for r in rows], axis=-2)


def _out_and_hold(u: np.ndarray, hold: np.ndarray, rise: float = 0.5) -> np.ndarray:
    """0 -> 1 over the first ``rise`` of the time, then back to ``hold`` (1 = stays out, 0 = returns)."""
    first = _smootherstep(np.clip(u / rise, 0.0, 1.0))
    back = _smootherstep(np.clip((u - rise) / (1 - rise), 0.0, 1.0))
    return first - (1 - hold) * back


# The share of people with each habit (shared out among the people as evenly as their number allows). Grips: how the board sits in the hand,
# as a roll about the forearm after the board's X or Y axis is turned along it.
GRIPS = ("flat", "tilted", "upside down")
_GRIP_P = (0.45, 0.30, 0.25)
# One of the 4 recorded people punched on aX/gY, the rest on aY/gZ: the board's X axis along the
# forearm and a punch arcing downwards (about the lateral axis) rather than inwards (the vertical).
_P_X_ALONG_FOREARM = 0.25


def _share(rng: np.random.Generator, n: int, p: Sequence[float]) -> np.ndarray:
    """A category per person, each category given to n * p[k] people (rounded at random, so
    that even a few people keep the recorded mix), in random order. Systematic sampling."""
    points = rng.random() + np.arange(n)
    return rng.permutation(np.searchsorted(np.cumsum(p) * n, points, side="right").clip(0, len(p) - 1))


def _either(rng: np.random.Generator, n: int, p: float, a: tuple[float, float], b: tuple[float, float]) -> np.ndarray:
    """Per person: uniform in range ``a`` with probability ``p``, else in range ``b`` (two habits)."""
    return np.where(rng.random(n) < p, rng.uniform(*a, n), rng.uniform(*b, n))


def _draw_people(n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Each person's habits: grip, pose, amplitude, speed and how they end each gesture."""
    grip = _share(rng, n, _GRIP_P)
    side = rng.choice([-1.0, 1.0], size=n)
    roll = np.select(
        [grip == 0, grip == 1], [rng.normal(0, np.radians(6), n), side * np.radians(rng.uniform(15, 30, n))],
        np.pi + rng.normal(0, np.radians(6), n),
    )
    x_along = _share(rng, n, (1 - _P_X_ALONG_FOREARM, _P_X_ALONG_FOREARM)) == 1
    return {
        "grip": grip,
        "grip_roll": roll,
        "grip_yaw": np.where(x_along, 0.0, -np.pi / 2) + rng.normal(0, np.radians(8), n),
        "grip_pitch": rng.normal(0, np.radians(8), n),
        "start_pitch": np.radians(rng.uniform(-20, 15, n)),  # negative: the forearm points a little up
        "amp": rng.uniform(0.85, 1.45, n),
        "speed": rng.uniform(0.8, 1.25, n),  # multiplies the duration
        "punch_lateral": x_along,
        "punch_hold": _either(rng, n, 0.5, (0.7, 1.0), (0.0, 0.3)),  # how far the fist stays out at the end
        "punch_twist": np.radians(rng.uniform(10, 25, n)) * rng.choice([-1.0, 1.0], size=n),
        "flex_hold": _either(rng, n, 0.7, (0.8, 1.0), (0.0, 0.3)),  # how far the forearm stays up at the end
        "flex_curl": np.radians(rng.uniform(85, 115, n)),
        "flex_supination": rng.uniform(0.0, 0.6, n),  # forearm roll per radian of curl
    }


def _grip_rotation(people: dict[str, np.ndarray], persons: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Board -> world at the start of a repetition: the person's grip and forearm pose, jittered."""
    m = len(persons)
    jitter = np.radians(5.0)
    yaw = people["grip_yaw"][persons] + rng.normal(0, jitter, m)
    roll = people["grip_roll"][persons] + rng.normal(0, jitter, m)
    pitch = people["grip_pitch"][persons] + rng.normal(0, jitter, m)
    pose = people["start_pitch"][persons] + rng.normal(0, jitter, m)
    return _axis_rotation(1, pose) @ _axis_rotation(1, pitch) @ _axis_rotation(0, roll) @ _axis_rotation(2, yaw)


def _style(people: dict[str, np.ndarray], persons: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """One repetition's style parameters, (m, 1) each: the person's habits, varied a little."""
    m = len(persons)

    def vary(key, sd, lo=-np.inf, hi=np.inf):
        return np.clip(people[key][persons] + rng.normal(0, sd, m), lo, hi)[:, None].astype(float)

    return {
        "lateral": people["punch_lateral"][persons][:, None],
        # A slower person reaches further: their punch's acceleration is set by its amplitude alone.
        "reach": people["speed"][persons][:, None] ** 2,
        "punch_hold": vary("punch_hold", 0.1, 0, 1),
        "punch_twist": vary("punch_twist", 0.1),
        "flex_hold": vary("flex_hold", 0.1, 0, 1),
        "flex_curl": vary("flex_curl", 0.1),
        "flex_supination": vary("flex_supination", 0.1, 0, None),
    }


def _punch_real(u, amp, style, rng):
    """Jab about 10-30 cm, the fist swinging ~30-55 degrees about the vertical axis (a hook) or, for some
    people, the lateral axis (downwards), turning as it goes; the fist may stay out. The path curves
    with the swing (the fist moves where it points), so the push stays along the forearm's axis."""
    out = _out_and_hold(u, style["punch_hold"])
    arc = np.radians(rng.uniform(30, 55, size=(len(u), 1))) * amp * out
    lateral = style["lateral"]
    pitch, yaw = np.where(lateral, arc, 0.15 * arc), np.where(lateral, 0.15 * arc, arc)
    ang = np.stack([style["punch_twist"] * out, pitch, yaw], -1)
    heading = np.stack([np.cos(pitch) * np.cos(yaw), np.cos(pitch) * np.sin(yaw), -np.sin(pitch)], -1)
    path = 0.13 * style["reach"] * amp * out  # distance along the path, out and (partly) back
    step = np.diff(path, axis=1, prepend=path[:, :1])
    pos = np.cumsum(step[..., None] * heading, axis=1)
    pos[..., 2] += 0.03 * amp * out
    return pos, ang


def _flex_real(u, amp, style, rng):
    """Arm curl: the forearm (30 cm) pitches up ~80-130 degrees about the elbow, the wrist turning
    outwards with it; some people leave the forearm up at the end."""
    theta = style["flex_curl"] * (0.75 + 0.25 * amp) * _out_and_hold(u, style["flex_hold"])
    zero = np.zeros_like(u)
    pos = 0.30 * np.stack([np.cos(theta) - 1.0, zero, np.sin(theta)], axis=-1)
    ang = np.stack([style["flex_supination"] * theta, -theta, zero], axis=-1)
    return pos, ang


# Calibrated trajectories where the simple ones differ; wave, circle and updown keep their motion
# (no recordings to calibrate them against) but get the people's grips, poses and amplitudes.
_REAL_GESTURES = {"punch": (0.40, _punch_real), "flex": (1.0, _flex_real)}


def _gesture_motion(
    name: str, persons: np.ndarray, people: dict[str, np.ndarray], t: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The hand's position and orientation, (m, len(t), 3) each, for one calibrated repetition per
    entry of ``persons``; ``t`` counts samples from the start of the movement. Also the durations (s)."""
    m = len(persons)
    if name in _REAL_GESTURES:
        duration_s, fn = _REAL_GESTURES[name]
        style = _style(people, persons, rng)
        trajectory = lambda u, a, r: fn(u, a, style, r)  # noqa: E731
    else:
        duration_s, trajectory = GESTURES[name]
    amp = people["amp"][persons] * rng.normal(1.0, 0.1, m)
    duration = duration_s * people["speed"][persons] * rng.normal(1.0, 0.1, m)
    u = np.clip(t / (duration[:, None] * SAMPLE_RATE_HZ), 0.0, 1.0)
    pos, ang = trajectory(u, amp[:, None], rng)
    seconds = (u * duration[:, None])[..., None]
    envelope = _envelope(u, ramp=0.3)[..., None]
    # A smaller wobble than the simple model's: recorded gyroscopes follow the gesture's own axes.
    for part, size in ((pos, 0.5 * _WOBBLE_M), (ang, 0.4 * _WOBBLE_RAD)):
        freq = rng.uniform(0.5, 2.5, (m, 1, 3))
        phase = rng.uniform(0, 2 * np.pi, (m, 1, 3))
        part += rng.normal(0.0, size, (m, 1, 3)) * envelope * np.sin(2 * np.pi * freq * seconds + phase)
    return pos, ang, duration


def _simulate_real(
    name: str,
    persons: np.ndarray,
    people: dict[str, np.ndarray],
    noise: float,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """The calibrated counterpart of :func:`_simulate`: same sensor, other people."""
    pos, ang, _ = _gesture_motion(name, persons, people, np.arange(_SIM_LEN) - _PRE_ROLL, rng)
    signal = _imu_readings(pos, ang, _grip_rotation(people, persons, rng))
    return _sense_and_trigger(signal, noise, rng)


def _sense_and_trigger(signal: np.ndarray, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Sensor noise and saturation, then the capture sketch's trigger: (windows, which triggered)."""
    m = len(signal)
    scale = noise * np.array([_ACCEL_NOISE_G] * 3 + [_GYRO_NOISE_DPS] * 3)
    signal = signal + rng.normal(size=signal.shape) * scale
    limit = np.array([ACCEL_RANGE_G] * 3 + [GYRO_RANGE_DPS] * 3)
    signal = np.clip(signal, -limit, limit)  # the sensor saturates at its configured range
    over = np.abs(signal[..., :3]).sum(axis=-1) >= TRIGGER_G
    start = over.argmax(axis=1)
    ok = over.any(axis=1) & (start + SAMPLES_PER_GESTURE <= signal.shape[1])
    start = np.where(ok, start, 0)
    rows = start[:, None] + np.arange(SAMPLES_PER_GESTURE)
    return signal[np.arange(m)[:, None], rows], ok


FULL_SCALE = (ACCEL_RANGE_G,) * 3 + (GYRO_RANGE_DPS,) * 3


def normalize_imu(x: np.ndarray) -> np.ndarray:
    """Scale accelerometer (g) and gyroscope (deg/s) channels to about [-1, 1] by the sensor's full range.

    One int8 input tensor has one scale: without this, the accelerometer's few g would
    vanish next to the gyroscope's hundreds of deg/s. The gesture sketch divides each
    reading by the same FULL_SCALE before it quantizes the model's input.
    """
    return (np.asarray(x, np.float32) / np.asarray(FULL_SCALE, np.float32)).astype(np.float32)


def _gesture_info(class_names, **details) -> DatasetInfo:
    """Metadata shared by synthetic and recorded gestures: same channels, units and rate."""
    return DatasetInfo(
        name="gestures",
        task="classification",
        class_names=tuple(class_names),
        feature_names=CHANNELS,
        units=UNITS,
        sample_rate_hz=SAMPLE_RATE_HZ,
        **details,
    )


def make_gestures(
    n_per_class: int = 100,
    classes: Sequence[str] = DEFAULT_CLASSES,
    n_people: int = 8,
    noise: float = 1.0,
    seed: int = 0,
    calibrated: bool = True,
    idle: bool = False,
) -> Dataset:
    """Synthetic IMU gestures in the capture sketch's format, shuffled, with the person of each.

    Each gesture comes from one of ``n_people`` persons, who each have their own amplitude,
    speed and way of holding the board; every repetition then varies a little around that.
    ``ds.groups`` holds the person (0 .. n_people-1) of every sample, for
    :func:`~labkit.datasets.split_by_person` or scikit-learn's ``LeaveOneGroupOut``.
    ``noise`` scales the white sensor noise (0.02 g, 2 deg/s). A repetition too gentle to
    cross the trigger is done again, as in a real capture session.

    People are drawn as real Nano 33 BLE Sense recordings show them (``calibrated=True``, the
    default): the board held flat, tilted or upside down, with its X or Y axis along the forearm;
    punches that swing as much as they push (peaks 2-4 g, rarely saturating); gestures that may end
    in another pose than they started (``info.truth['people']`` lists each person's habits).
    A model trained on one set of people and tested on another meets what it meets on real
    people; use it with :func:`~labkit.datasets.split_by_person`.

    ``calibrated=False`` reproduces the earlier, simpler generator bit for bit (the default until
    issue 16; results stored before then were made with it): the board within 25 degrees of flat,
    every gesture back at the start pose, harder punches (4.6 g, 2 % saturated); a model trained on
    it scored 0.68 on real recordings (issue 16).

    ``idle=True`` adds a last class ``"idle"``: ``n_per_class`` windows of the same people's hands
    between gestures (at rest in any orientation, trembling, moving the board, walking), never
    crossing the trigger (see :func:`labkit.datasets.make_idle`). It needs ``calibrated=True``.
    Off by default: the classes are exactly ``classes`` unless asked.
    """
    classes = tuple(classes)
    unknown = [c for c in classes if c not in GESTURES]
    if not classes or unknown or len(set(classes)) != len(classes):
        raise DatasetError(
            f"classes must be distinct names from {tuple(GESTURES)}, got {classes!r}"
        )
    if n_per_class < 1 or n_people < 1 or noise < 0:
        raise DatasetError(
            f"need n_per_class >= 1, n_people >= 1 and noise >= 0, "
            f"got n_per_class={n_per_class}, n_people={n_people}, noise={noise}"
        )
    if idle and not calibrated:
        raise DatasetError("idle=True needs calibrated=True: the idle windows use the calibrated people's grips")
    rng = np.random.default_rng(seed)
    if calibrated:
        people = _draw_people(n_people, rng)
        simulate = _simulate_real
    else:
        max_tilt = np.radians(_MAX_HAND_TILT_DEG)
        people = {
            "amp": rng.uniform(0.8, 1.2, n_people),
            "speed": rng.uniform(0.8, 1.25, n_people),  # multiplies the duration
            "tilt": rng.uniform(-max_tilt, max_tilt, (n_people, 3)),
        }
        simulate = _simulate
    x = np.empty((len(classes) * n_per_class, SAMPLES_PER_GESTURE, len(CHANNELS)), dtype=np.float32)
    groups = np.empty(len(classes) * n_per_class, dtype=np.int64)
    for k, name in enumerate(classes):
        block = x[k * n_per_class : (k + 1) * n_per_class]
        persons = rng.integers(n_people, size=n_per_class)
        groups[k * n_per_class : (k + 1) * n_per_class] = persons
        todo = np.arange(n_per_class)
        for _ in range(_MAX_RETRIES):
            windows, ok = simulate(name, persons[todo], people, noise, rng)
            block[todo[ok]] = windows[ok]
            todo = todo[~ok]
            if not todo.size:
                break
        else:  # unreachable with the built-in gestures; guards against a too-gentle new one
            raise DatasetError(f"gesture {name!r} rarely crosses the {TRIGGER_G} g trigger")
    if idle:
        from labkit.datasets.streams import IDLE, _idle_windows

        persons = rng.integers(n_people, size=n_per_class)
        x = np.concatenate([x, _idle_windows(persons, people, noise, rng)])
        groups = np.concatenate([groups, persons])
        classes = classes + (IDLE,)
    y = np.repeat(np.arange(len(classes), dtype=np.int64), n_per_class)
    order = rng.permutation(len(y))
    truth = {"n_people": n_people, "noise": noise, "seed": seed, "calibrated": calibrated, "idle": idle}
    if calibrated:
        truth["people"] = _describe_people(people)
    info = _gesture_info(
        classes,
        description=(
            f"Synthetic IMU gestures: {n_per_class} per class from {n_people} people, "
            f"{SAMPLES_PER_GESTURE} samples at {SAMPLE_RATE_HZ:g} Hz starting at the "
            f"{TRIGGER_G} g trigger; accelerometer in g, gyroscope in deg/s."
        ),
        source=f"synthetic (seed={seed})",
        truth=truth,
    )
    return Dataset(x[order], y[order], info, groups[order])


def _describe_people(people: dict[str, np.ndarray]) -> tuple[dict[str, object], ...]:
    """Each simulated person's habits in words and degrees, for a lesson to show."""
    return tuple(
        {
            "person": i,
            "grip": GRIPS[int(people["grip"][i])],
            "along_forearm": "X" if abs(people["grip_yaw"][i]) < np.pi / 4 else "Y",
            "amplitude": round(float(people["amp"][i]), 2),
            "duration": round(float(people["speed"][i]), 2),
            "punch_arc": "lateral" if people["punch_lateral"][i] else "vertical",
            "punch_stays_out": round(float(people["punch_hold"][i]), 2),
            "flex_stays_up": round(float(people["flex_hold"][i]), 2),
        }
        for i in range(len(people["amp"]))
    )


# ---------------------------------------------------------------------------------------------
# CSV files as printed by the capture sketch

_FORMAT_HINT = (
    f"a capture file has the header line {HEADER}, then gestures of {SAMPLES_PER_GESTURE} lines "
    f"of 6 comma-separated numbers each, separated by blank lines"
)


def _format_gestures(x: np.ndarray) -> str:
    """Gestures as the sketch prints them: 3 decimals, a blank line after each gesture."""
    rounded = np.round(x.astype(np.float64), 3) + 0.0  # + 0.0 turns -0.0 into 0.0
    return "".join(
        "\n".join(",".join(f"{v:.3f}" for v in row) for row in gesture) + "\n\n" for gesture in rounded
    )


def _check_gestures(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 2:
        x = x[None]
    if x.ndim != 3 or x.shape[1:] != (SAMPLES_PER_GESTURE, len(CHANNELS)):
        shape = "(" + ", ".join(str(int(d)) for d in x.shape) + ("," if x.ndim == 1 else "") + ")"
        raise DatasetError(
            f"gestures must have shape (n, {SAMPLES_PER_GESTURE}, {len(CHANNELS)}), got {shape}"
        )
    if not np.isfinite(x).all():
        raise DatasetError("gestures contain NaN or infinite values; a capture file cannot hold them")
    over = np.abs(x) > np.array(SENSOR_LIMITS)
    if over.any():
        n, row, ch = (int(i) for i in np.argwhere(over)[0])
        raise DatasetError(
            f"gesture {n} row {row}: {CHANNELS[ch]} = {x[n, row, ch]:g} is beyond the sensor's range "
            f"(±{SENSOR_LIMITS[ch]:g} {UNITS[ch]}); a capture file holds g and deg/s"
        )
    return x


def write_gesture_csv(path: str | os.PathLike, x: np.ndarray, append: bool = False) -> Path:
    """Write gestures (n, 119, 6) — or one (119, 6) — in the capture format, atomically.

    With ``append`` an existing file is checked first (strictly: a cut-short last gesture is
    refused too), so a good recording is never extended with gestures that would make the
    whole file unreadable.
    """
    path = Path(path)
    body = _format_gestures(_check_gestures(x))
    if append and path.exists():
        existing = _read_text(path)
        _parse_gestures(existing, str(path), strict=True)
        if existing.strip():
            return write_atomic(path, existing.rstrip() + "\n\n" + body)
    return write_atomic(path, HEADER + "\n" + body)


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")  # -sig: files saved by Notepad start with a BOM
    except FileNotFoundError:
        if path.is_symlink():
            raise DatasetError(f"{path} is a link to {os.readlink(path)}, which does not exist; "
                               "expected a gesture capture CSV") from None
        raise DatasetError(f"{path}: no such file; expected a gesture capture CSV") from None
    except IsADirectoryError:
        raise DatasetError(f"{path} is a folder; expected a gesture capture CSV file") from None
    except UnicodeDecodeError:
        raise DatasetError(f"{path} is not a text file; {_FORMAT_HINT}") from None


class PartialGestureWarning(UserWarning):
    """A capture file ends in a gesture with fewer than 119 rows (a capture cut short); it was dropped."""


def _parse_rows(text: str, name: str) -> tuple[list[int], np.ndarray, list[int | None]]:
    """The data rows of capture text: their line numbers, their values (float64, (n, 6)) and, per
    row, the blank lines just before it (None after a header: a gesture boundary in any case)."""
    numbers: list[int] = []
    values: list[list[float]] = []
    gaps: list[int | None] = []
    blank, header = 0, False
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            blank += 1
            continue
        if line.replace(" ", "").lower() == HEADER.lower():
            header = True  # a repeated header separates gestures, as a blank line does
            continue
        fields = [f.strip() for f in line.split(",")]
        if len(fields) != len(CHANNELS):
            raise DatasetError(
                f"{name} line {number}: expected 6 comma-separated numbers ({HEADER}), "
                f"got {len(fields)}: {line[:60]!r}; {_FORMAT_HINT}"
            )
        row = []
        for field in fields:
            try:
                value = float(field)
            except ValueError:
                raise DatasetError(
                    f"{name} line {number}: value {field!r} is not a number; {_FORMAT_HINT}"
                ) from None
            if not np.isfinite(value):
                raise DatasetError(
                    f"{name} line {number}: value {field!r} is not a finite number; "
                    f"a sensor reading is never NaN or infinite; {_FORMAT_HINT}"
                )
            row.append(value)
        numbers.append(number)
        values.append(row)
        gaps.append(None if header else blank)
        blank, header = 0, False
    return numbers, np.array(values, dtype=np.float64).reshape(-1, len(CHANNELS)), gaps


def _check_units(numbers: list[int], values: np.ndarray, name: str) -> None:
    """Refuse m/s² (|a| about 9.8 at rest instead of 1 g), then any value beyond the sensors' range."""
    if len(values):
        magnitude = float(np.median(np.linalg.norm(values[:, :3], axis=1)))
        if magnitude > MS2_SUSPECT_G:
            raise DatasetError(
                f"{name}: the accelerometer columns look like m/s², not g: the median |a| is {magnitude:.2f} "
                f"(about {_STANDARD_GRAVITY:.2f} in m/s² at rest, 1 in g); divide aX, aY, aZ by {_STANDARD_GRAVITY} "
                f"before saving (the capture sketch prints g)"
            )
    over = np.abs(values) > np.array(SENSOR_LIMITS)
    if over.any():
        i, ch = (int(v) for v in np.argwhere(over)[0])
        raise DatasetError(
            f"{name} line {numbers[i]}: {CHANNELS[ch]} = {values[i, ch]:g} is beyond the sensor's range "
            f"(±{SENSOR_LIMITS[ch]:g} {UNITS[ch]}), so it is not a reading; {_FORMAT_HINT}"
        )


def _blocks(gaps: list[int | None]) -> list[range]:
    """Rows grouped into runs between gesture boundaries. A boundary is a header or a blank line;
    when *every* row is followed by blank lines (some serial monitors double each line end),
    only a run of more blank lines than that separates gestures."""
    inner = [g for g in gaps[1:] if g is not None]
    row_gap = min(inner) if inner else 0
    starts = [i for i, g in enumerate(gaps) if i == 0 or g is None or g > row_gap]
    return [range(a, b) for a, b in zip(starts, starts[1:] + [len(gaps)])]


def _parse_gestures(text: str, name: str, strict: bool = False) -> np.ndarray:
    """Parse capture text into (n, 119, 6) float32; n may be 0. Errors name file and line.

    A last gesture with fewer than 119 rows (a capture cut short) is dropped with a
    :class:`PartialGestureWarning` naming its lines, or refused with ``strict``."""
    numbers, values, gaps = _parse_rows(text, name)
    _check_units(numbers, values, name)
    keep: list[np.ndarray] = []
    blocks = _blocks(gaps)
    for k, block in enumerate(blocks):
        first, end_line = numbers[block.start], numbers[block.stop - 1]
        n = len(block)
        if n % SAMPLES_PER_GESTURE == 0:
            keep.append(values[block.start : block.stop])
            continue
        if n < SAMPLES_PER_GESTURE:
            problem = (
                f"gesture ending at line {end_line} has {n} rows; every gesture must have "
                f"exactly {SAMPLES_PER_GESTURE} rows (the capture sketch's SAMPLES_PER_GESTURE)"
            )
            if k == len(blocks) - 1 and not strict:
                whole = sum(len(v) for v in keep) // SAMPLES_PER_GESTURE
                if whole:
                    warnings.warn(
                        f"{name} lines {first}-{end_line}: the last gesture has only {n} of {SAMPLES_PER_GESTURE} "
                        f"rows (a capture cut short?); dropped it and kept the {whole} whole gesture(s) before it",
                        PartialGestureWarning,
                        stacklevel=3,
                    )
                    continue
                problem += "; it is the file's only gesture, so the file holds no whole gesture"
        else:
            problem = (
                f"the {n} rows from line {first} to line {end_line} are not a whole "
                f"number of gestures; every gesture must have exactly {SAMPLES_PER_GESTURE} rows "
                f"(the capture sketch's SAMPLES_PER_GESTURE)"
            )
        raise DatasetError(f"{name} line {end_line}: {problem}; {_FORMAT_HINT}")
    x = np.concatenate(keep) if keep else np.empty((0, len(CHANNELS)))
    return x.astype(np.float32).reshape(-1, SAMPLES_PER_GESTURE, len(CHANNELS))


def load_gesture_csv(path: str | os.PathLike, label: str | None = None, strict: bool = False) -> np.ndarray:
    """Read one capture file into float32 (n, 119, 6).

    ``label`` is only named in error messages, to say which class the broken file was for.
    A last gesture cut short (fewer than 119 rows) is dropped with a :class:`PartialGestureWarning`;
    ``strict=True`` refuses the file instead. Values must be g and deg/s within the sensors'
    range (±16 g, ±2000 deg/s); a file in m/s² is recognised and refused.
    """
    path = Path(path)
    name = str(path) if label is None else f"{path} (label {label!r})"
    text = _read_text(path)
    if not text.strip():
        raise DatasetError(f"{name} is empty; {_FORMAT_HINT}")
    x = _parse_gestures(text, name, strict=strict)
    if not len(x):
        raise DatasetError(f"{name} holds no gestures, only a header; {_FORMAT_HINT}")
    return x


def count_gestures(path: str | os.PathLike) -> int:
    """How many gestures a capture file holds: 0 for a missing, empty or header-only file.

    Strict (a cut-short last gesture is refused) and writes nothing: what a program that appends
    to the file checks first, so that appending cannot make the file unreadable.
    """
    path = Path(path)
    if not path.exists() and not path.is_symlink():
        return 0
    return len(_parse_gestures(_read_text(path), str(path), strict=True))


def _check_is_file(p: Path) -> None:
    """An entry named *.csv must be a readable file: a folder or a dangling link there is reported."""
    if p.is_dir():
        raise DatasetError(f"{p} is a folder, not a capture file; load_gestures reads one CSV file per label "
                           "from the folder: move that folder out or rename it")
    if p.is_symlink() and not p.exists():
        raise DatasetError(f"{p} is a link to {os.readlink(p)}, which does not exist; fix or remove the link")
    if not p.is_file():
        raise DatasetError(f"{p} is not a regular file; expected a gesture capture CSV")


def _one_file_per_label(files: Sequence[Path], where: str) -> dict[str, Path]:
    """label (file stem) -> file; two files whose labels differ only in case are refused."""
    by_key: dict[str, Path] = {}
    for p in files:
        other = by_key.setdefault(p.stem.casefold(), p)
        if other != p:
            raise DatasetError(
                f"{where}: {other.name} and {p.name} are two files for the same label (labels are compared "
                "ignoring case, as Windows and macOS compare file names); merge them or rename one"
            )
    return {p.stem: p for p in files}


def load_gestures(
    paths_or_folder: str | os.PathLike | Sequence[str | os.PathLike],
    classes: Sequence[str] | None = None,
    strict: bool = False,
    person: int = 0,
) -> Dataset:
    """Load one capture CSV per label (label = file stem, e.g. ``punch.csv``) into a Dataset.

    Give a folder or a list of files. Classes are sorted by name unless ``classes`` sets the
    order; with a folder, ``classes`` may also pick a subset of its files. Labels that differ
    only in case (``punch.csv``, ``Punch.CSV``) are refused, and so is anything named *.csv in
    the folder that is not a readable file. ``strict``: see :func:`load_gesture_csv`.

    One folder is one student's recordings: every sample gets ``person`` (default 0) in
    ``ds.groups``. To evaluate on people the model never saw, load each student's folder with
    its own ``person`` and join them with :func:`~labkit.datasets.concat_datasets`.
    """
    if isinstance(person, bool) or not isinstance(person, (int, np.integer)) or person < 0:
        raise DatasetError(f"person must be an integer id >= 0 (whose recordings these are), got {person!r}")
    if classes is not None and (not classes or len(set(classes)) != len(classes)):
        raise DatasetError(f"classes must be distinct label names, got {tuple(classes)!r}")
    if isinstance(paths_or_folder, (str, os.PathLike)) and Path(paths_or_folder).is_dir():
        folder = Path(paths_or_folder)
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() == ".csv")
        if not files:
            raise DatasetError(
                f"folder {folder} has no .csv files; load_gestures expects one CSV per label, "
                "named after the label (e.g. punch.csv, flex.csv)"
            )
        where = f"folder {folder}"
        if classes is not None:
            wanted = {c.casefold() for c in classes}
            files = [p for p in files if p.stem.casefold() in wanted]
        by_label = _one_file_per_label(files, where)
        for p in by_label.values():
            _check_is_file(p)
        if classes is not None:
            by_label = {c: p for c, p in by_label.items() if c in classes}
    else:
        if isinstance(paths_or_folder, (str, os.PathLike)):
            paths_or_folder = [paths_or_folder]
        files = [Path(p) for p in paths_or_folder]
        by_label = {p.stem: p for p in files}
        if not files or len(by_label) != len(files):
            raise DatasetError(
                f"expected one CSV file per label with distinct names, got {[str(p) for p in files]}"
            )
        extra = sorted(set(by_label) - set(by_label if classes is None else classes))
        if extra:
            raise DatasetError(f"files for labels {extra} are not in classes {tuple(classes or ())}")
        where = "the files given"
        _one_file_per_label(files, where)

    names = tuple(sorted(by_label)) if classes is None else tuple(classes)
    missing = [c for c in names if c not in by_label]
    if missing:
        raise DatasetError(f"no CSV file for classes {missing} in {where}; expected e.g. {missing[0]}.csv")
    xs = [load_gesture_csv(by_label[c], label=c, strict=strict) for c in names]
    x = np.concatenate(xs)
    y = np.repeat(np.arange(len(names), dtype=np.int64), [len(a) for a in xs])
    info = _gesture_info(
        names,
        description=f"IMU gesture captures: {', '.join(f'{c}={len(a)}' for c, a in zip(names, xs))}.",
        source=", ".join(str(by_label[c]) for c in names),
    )
    return Dataset(x, y, info, np.full(len(y), int(person), dtype=np.int64))
