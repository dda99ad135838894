"""Data sets for the course: synthetic IMU gestures, capture CSVs and small toy problems.

Every loader returns a :class:`Dataset` of plain numpy arrays that unpacks as
``x, y, info = make_gestures()``.
"""

from labkit.datasets.base import Dataset, DatasetInfo
from labkit.datasets.gestures import (
    ACCEL_RANGE_G,
    CHANNELS,
    DEFAULT_CLASSES,
    GESTURES,
    GYRO_RANGE_DPS,
    SAMPLE_RATE_HZ,
    SAMPLES_PER_GESTURE,
    TRIGGER_G,
    UNITS,
    load_gesture_csv,
    load_gestures,
    make_gestures,
    trigger_index,
    write_gesture_csv,
)
from labkit.datasets.toy import moons, noisy_line, noisy_sine, spiral

__all__ = [
    "ACCEL_RANGE_G",
    "CHANNELS",
    "DEFAULT_CLASSES",
    "GESTURES",
    "GYRO_RANGE_DPS",
    "SAMPLE_RATE_HZ",
    "SAMPLES_PER_GESTURE",
    "TRIGGER_G",
    "UNITS",
    "Dataset",
    "DatasetInfo",
    "load_gesture_csv",
    "load_gestures",
    "make_gestures",
    "moons",
    "noisy_line",
    "noisy_sine",
    "spiral",
    "trigger_index",
    "write_gesture_csv",
]
