"""Data sets for the course: synthetic IMU gestures, capture CSVs, small toy problems, and
images that work offline (Fashion-MNIST from Debian's package, scikit-learn's digits).

Every loader returns a :class:`Dataset` of plain numpy arrays that unpacks as
``x, y, info = make_gestures()``.
"""

from labkit.datasets.augment import augment_dataset
from labkit.datasets.base import Dataset, DatasetInfo, concat_datasets, split_by_person
from labkit.datasets.gestures import (
    ACCEL_RANGE_G,
    CHANNELS,
    DEFAULT_CLASSES,
    GESTURES,
    GRIPS,
    GYRO_RANGE_DPS,
    SAMPLE_RATE_HZ,
    SENSOR_LIMITS,
    PartialGestureWarning,
    SAMPLES_PER_GESTURE,
    TRIGGER_G,
    UNITS,
    count_gestures,
    load_gesture_csv,
    load_gestures,
    make_gestures,
    normalize_imu,
    trigger_index,
    write_gesture_csv,
)
from labkit.datasets.images import (
    FASHION_CLASSES,
    fashion_mnist_available,
    load_digits,
    load_fashion_mnist,
    load_image_data,
)
from labkit.datasets.streams import IDLE, make_gesture_stream, make_idle
from labkit.datasets.toy import moons, noisy_line, noisy_sine, spiral

__all__ = [
    "ACCEL_RANGE_G",
    "CHANNELS",
    "DEFAULT_CLASSES",
    "GESTURES",
    "GRIPS",
    "IDLE",
    "GYRO_RANGE_DPS",
    "SAMPLE_RATE_HZ",
    "SAMPLES_PER_GESTURE",
    "SENSOR_LIMITS",
    "PartialGestureWarning",
    "TRIGGER_G",
    "UNITS",
    "Dataset",
    "FASHION_CLASSES",
    "fashion_mnist_available",
    "load_digits",
    "load_fashion_mnist",
    "load_image_data",
    "DatasetInfo",
    "augment_dataset",
    "concat_datasets",
    "count_gestures",
    "load_gesture_csv",
    "load_gestures",
    "make_gestures",
    "make_gesture_stream",
    "make_idle",
    "split_by_person",
    "normalize_imu",
    "moons",
    "noisy_line",
    "noisy_sine",
    "spiral",
    "trigger_index",
    "write_gesture_csv",
]
