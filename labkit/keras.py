"""The one Keras of the kit: ``from labkit.keras import keras, tf``.

Importing tensorflow costs a few seconds, so modules that only sometimes need it import
this lazily, inside functions.
"""

import labkit  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)

import tensorflow as tf  # noqa: E402
import tf_keras as keras  # noqa: E402

tf.get_logger().setLevel("ERROR")

__all__ = ["keras", "tf"]
