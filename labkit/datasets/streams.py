"""The board between gestures: idle windows, and continuous streams with gestures embedded.

A recogniser on the board does not get neat windows that start at a trigger: it sees a continuous
stream in which the hand mostly rests, trembles, moves the board somewhere else or swings while
walking, and now and then makes a gesture. This module simulates that with the same physics as
:func:`~labkit.datasets.make_gestures` (a hand trajectory and orientation differentiated into
specific force and angular rate, the same people and grips), so a model can learn an "idle" class
and a sliding-window recogniser can be scored against known gesture starts.

Units are the capture format's: accelerometer in g, gyroscope in deg/s, 119 Hz, channels
``aX, aY, aZ, gX, gY, gZ``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from labkit.datasets import gestures as _g
from labkit.datasets.base import Dataset
from labkit.errors import DatasetError

IDLE = "idle"

# Idle motion, chosen to stay well below the capture trigger (|aX|+|aY|+|aZ| >= 2.5 g):
_TREMOR_DEG = (0.05, 0.3)  # physiological tremor, 6-12 Hz: a few deg/s on the gyroscope
_MOVE_M, _MOVE_RAD = 0.15, np.radians(35)  # a slow repositioning: up to 15 cm and 35 degrees ...
_MOVE_S = (0.8, 2.0)  # ... over 0.8-2 s
_WALK_P = 0.3  # the fraction of idle stretches spent walking
_WALK_BOUNCE_M = (0.01, 0.02)  # vertical bounce per step (0.15-0.35 g at 1.6-2.2 steps/s)
_WALK_SWING_RAD = np.radians(12)  # the arm swinging fore and aft at half the step rate
_STREAM_GAP_S = 2.5  # the least time a gesture in a stream has to itself (movement + relaxing)


def _idle_motion(m: int, length: int, rng: np.random.Generator, moves_per_s: float = 0.2) -> tuple[np.ndarray, np.ndarray]:
    """Position (m) and roll/pitch/yaw (rad) of an idle hand, (m, length, 3) each: a resting pose,
    tremor, slow repositioning now and then, and for some sequences walking."""
    t = np.arange(length) / _g.SAMPLE_RATE_HZ
    pos = np.zeros((m, length, 3))
    ang = np.zeros((m, length, 3))
    # The pose at rest: hand on the lap or the table (rolled), forearm forward, or the arm hanging
    # down by the side (pitched up to 80 degrees, the board nearly vertical).
    ang[..., 0] += rng.uniform(-np.radians(60), np.radians(60), (m, 1))
    ang[..., 1] += rng.uniform(-np.radians(30), np.radians(80), (m, 1))
    ang[..., 2] += rng.uniform(-np.pi, np.pi, (m, 1))
    # Tremor: two sines per axis between 6 and 12 Hz.
    for _ in range(2):
        freq = rng.uniform(6, 12, (m, 1, 3))
        amp = np.radians(rng.uniform(*_TREMOR_DEG, (m, 1, 3)))
        ang += amp * np.sin(2 * np.pi * freq * t[None, :, None] + rng.uniform(0, 2 * np.pi, (m, 1, 3)))
    # Slow repositioning: moves that may have started before the sequence and end inside it or later.
    n_moves = max(1, int(np.ceil(moves_per_s * (t[-1] + 2 * _MOVE_S[1]))))
    for _ in range(n_moves):
        start = rng.uniform(-_MOVE_S[1], t[-1] + _MOVE_S[1], (m, 1))
        dur = rng.uniform(*_MOVE_S, (m, 1))
        s = _g._smootherstep(np.clip((t - start) / dur, 0, 1))[..., None]
        pos += rng.uniform(-_MOVE_M, _MOVE_M, (m, 1, 3)) * s
        ang += rng.uniform(-_MOVE_RAD, _MOVE_RAD, (m, 1, 3)) * s
    # Walking: a vertical bounce at the step rate, the arm swinging (pitch) at half of it.
    walking = rng.random((m, 1)) < _WALK_P
    step_hz = rng.uniform(1.6, 2.2, (m, 1))
    phase = rng.uniform(0, 2 * np.pi, (m, 1))
    bounce = rng.uniform(*_WALK_BOUNCE_M, (m, 1)) * np.sin(2 * np.pi * step_hz * t + phase)
    swing = rng.uniform(0.3, 1.0, (m, 1)) * _WALK_SWING_RAD * np.sin(np.pi * step_hz * t + phase)
    pos[..., 2] += walking * bounce
    ang[..., 1] += walking * swing
    return pos, ang


def _readings(pos: np.ndarray, ang: np.ndarray, grip: np.ndarray, noise: float, rng: np.random.Generator) -> np.ndarray:
    """Sensor readings (g, deg/s) with white noise, saturated at the sensor's range: (m, L - 2, 6).

    The first and last sample only serve the derivatives of the others: the hand is moving
    there, and a derivative taken at the edge of a moving trajectory would spike."""
    signal = _g._imu_readings(pos, ang, grip)[:, 1:-1]
    scale = noise * np.array([_g._ACCEL_NOISE_G] * 3 + [_g._GYRO_NOISE_DPS] * 3)
    signal = signal + rng.normal(size=signal.shape) * scale
    return np.clip(signal, -np.array(_g.FULL_SCALE), np.array(_g.FULL_SCALE))


def _crosses_trigger(signal: np.ndarray) -> np.ndarray:
    return (np.abs(signal[..., :3]).sum(axis=-1) >= _g.TRIGGER_G).any(axis=-1)


def _idle_windows(persons: np.ndarray, people: dict[str, np.ndarray], noise: float, rng: np.random.Generator) -> np.ndarray:
    """One idle window (119, 6) per entry of ``persons``, each below the capture trigger throughout."""
    out = np.empty((len(persons), _g.SAMPLES_PER_GESTURE, len(_g.CHANNELS)), dtype=np.float32)
    todo = np.arange(len(persons))
    for _ in range(_g._MAX_RETRIES):
        pos, ang = _idle_motion(len(todo), _g.SAMPLES_PER_GESTURE + 2, rng)
        signal = _readings(pos, ang, _g._grip_rotation(people, persons[todo], rng), noise, rng)
        ok = ~_crosses_trigger(signal)
        out[todo[ok]] = signal[ok]
        todo = todo[~ok]
        if not todo.size:
            return out
    raise DatasetError("idle motion kept crossing the capture trigger")  # pragma: no cover (the limits above prevent it)


def make_idle(n: int = 100, n_people: int = 8, noise: float = 1.0, seed: int = 0) -> Dataset:
    """``n`` idle windows (119 samples, not trigger-aligned) from ``n_people`` calibrated people,
    as one class ``"idle"``: the board at rest in various orientations, hand tremor, slow
    repositioning, walking. None crosses the capture trigger. ``groups`` holds the person.

    The people are the same as those of ``make_gestures(n_people=..., seed=...)`` with the same
    seed; ``make_gestures(..., idle=True)`` adds these windows as a class of its own.
    """
    if not isinstance(n, (int, np.integer)) or n < 1 or not isinstance(n_people, (int, np.integer)) or n_people < 1:
        raise DatasetError(f"make_idle needs n >= 1 and n_people >= 1 (integers), got n={n!r}, n_people={n_people!r}")
    if not np.isfinite(noise) or noise < 0:
        raise DatasetError(f"noise must be a finite number >= 0 (1 = the sensor's own noise), got {noise!r}")
    rng = np.random.default_rng(seed)
    people = _g._draw_people(n_people, rng)
    persons = rng.integers(n_people, size=n)
    x = _idle_windows(persons, people, noise, rng)
    info = _g._gesture_info(
        (IDLE,),
        description=f"Synthetic idle IMU windows: {n} from {n_people} people (rest, tremor, repositioning, walking).",
        source=f"synthetic (seed={seed})",
        truth={"n_people": n_people, "noise": noise, "seed": seed, "people": _g._describe_people(people)},
    )
    return Dataset(x, np.zeros(n, dtype=np.int64), info, persons.astype(np.int64))


def make_gesture_stream(
    seconds: float = 60.0,
    gestures_per_minute: float = 10.0,
    classes: Sequence[str] = _g.DEFAULT_CLASSES,
    person: int = 0,
    n_people: int = 8,
    noise: float = 1.0,
    seed: int = 0,
) -> tuple[np.ndarray, pd.DataFrame]:
    """A continuous recording of one person: idle motion with gestures embedded at known places.

    Returns ``(stream, events)``: ``stream`` is float32 ``(T, 6)`` with ``T = round(seconds * 119)``,
    channels ``aX, aY, aZ, gX, gY, gZ`` in g and deg/s at 119 Hz; ``events`` is a DataFrame with one
    row per gesture, in time order:

    - ``start``: the sample where the capture sketch's trigger fires (|aX|+|aY|+|aZ| >= 2.5 g), i.e.
      where a capture window of 119 samples would begin; for a gesture too gentle to trigger, its onset;
    - ``onset``, ``end``: the samples where the hand starts moving and where the movement ends;
    - ``label`` (class name), ``y`` (index into ``classes``), ``triggered`` (bool).

    ``person`` picks one of the ``n_people`` people drawn exactly as ``make_gestures(n_people=...,
    seed=seed)`` draws them, so the stream's person matches that set's ``groups == person``. Gestures
    are spread evenly at random (``round(seconds * gestures_per_minute / 60)`` of them, classes in
    random order), each with at least 2.5 s to itself; a held end pose relaxes back within ~1.5 s.
    Between gestures the hand is idle (see :func:`make_idle`) and never crosses the trigger.
    """
    classes = tuple(classes)
    unknown = [c for c in classes if c not in _g.GESTURES]
    if not classes or unknown or len(set(classes)) != len(classes):
        raise DatasetError(f"classes must be distinct names from {tuple(_g.GESTURES)}, got {classes!r}")
    if not np.isfinite(seconds) or seconds < 2:
        raise DatasetError(f"seconds must be at least 2 (a gesture and some rest), got {seconds!r}")
    if not np.isfinite(gestures_per_minute) or gestures_per_minute < 0:
        raise DatasetError(f"gestures_per_minute must be a finite number >= 0, got {gestures_per_minute!r}")
    if not isinstance(n_people, (int, np.integer)) or n_people < 1 or not isinstance(person, (int, np.integer)) or not 0 <= person < n_people:
        raise DatasetError(f"person must be an integer in 0..n_people-1, got person={person!r}, n_people={n_people!r}")
    if not np.isfinite(noise) or noise < 0:
        raise DatasetError(f"noise must be a finite number >= 0 (1 = the sensor's own noise), got {noise!r}")
    n_events = int(round(seconds * gestures_per_minute / 60))
    if n_events and seconds / n_events < _STREAM_GAP_S:
        raise DatasetError(
            f"{gestures_per_minute:g} gestures per minute leave {60 / gestures_per_minute:.1f} s per gesture; each needs "
            f"at least {_STREAM_GAP_S:g} s (the movement and a rest), so at most {60 / _STREAM_GAP_S:g} per minute"
        )

    rng = np.random.default_rng(seed)
    people = _g._draw_people(n_people, rng)  # the same people as make_gestures(n_people, seed)
    stream_rng = np.random.default_rng([seed, person, 7919])
    fs = _g.SAMPLE_RATE_HZ
    length = int(round(seconds * fs))
    pos, ang = _idle_motion(1, length + 2, stream_rng, moves_per_s=0.1)  # one more sample either side
    pos, ang = pos[0], ang[0]
    who = np.array([person])
    grip = _g._grip_rotation(people, who, stream_rng)

    slot = length / max(n_events, 1)
    labels = stream_rng.integers(len(classes), size=n_events)
    onsets, ends = [], []
    t = np.arange(length + 2) - 1  # sample numbers of the stream
    for k in range(n_events):
        # The gesture starts somewhere in its slot, leaving room for the movement and relaxing.
        room = slot - _STREAM_GAP_S * fs
        onset = int(k * slot + 0.25 * fs + stream_rng.uniform(0, max(room, 0)))
        g_pos, g_ang, duration = _g._gesture_motion(classes[labels[k]], who, people, t - onset, stream_rng)
        end = onset + int(round(duration[0] * fs))
        # A pose held at the end (arm out, forearm up) relaxes back to the idle pose.
        relax = 1 - _g._smootherstep(np.clip((t - end) / (stream_rng.uniform(0.8, 1.5) * fs), 0, 1))
        pos += g_pos[0] * relax[:, None]
        ang += g_ang[0] * relax[:, None]
        onsets.append(onset)
        ends.append(end)
    stream = _readings(pos[None], ang[None], grip, noise, stream_rng)[0].astype(np.float32)

    over = np.abs(stream[:, :3]).sum(axis=1) >= _g.TRIGGER_G
    starts, triggered = [], []
    for onset, end in zip(onsets, ends):
        hits = np.flatnonzero(over[onset:end])
        triggered.append(bool(hits.size))
        starts.append(onset + int(hits[0]) if hits.size else onset)
    events = pd.DataFrame(
        {
            "start": np.array(starts, dtype=np.int64),
            "onset": np.array(onsets, dtype=np.int64),
            "end": np.array(ends, dtype=np.int64),
            "label": [classes[i] for i in labels],
            "y": labels.astype(np.int64),
            "triggered": np.array(triggered, dtype=bool),
        }
    )
    return stream, events
