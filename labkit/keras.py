"""The one Keras of the kit: ``from labkit.keras import keras, tf``.

Importing tensorflow costs a few seconds, so modules that only sometimes need it import
this lazily, inside functions.
"""

import labkit  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)
from labkit.quiet import capture_stderr

# TensorFlow's C++ start-up lines (cuda drivers, oneDNN) go to fd 2 whatever
# TF_CPP_MIN_LOG_LEVEL says; they are noise on a CPU-only course machine.
with capture_stderr() as _startup:
    import tensorflow as tf  # noqa: E402
    import tf_keras as keras  # noqa: E402

    tf.config.list_physical_devices("GPU")  # probes CUDA now, quietly, not during the first fit

tf.get_logger().setLevel("ERROR")
startup_log = _startup.text  # kept for anyone debugging a TensorFlow install

__all__ = ["keras", "tf"]
