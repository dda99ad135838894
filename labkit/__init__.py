"""labkit: deep learning on the edge, from gradient descent to an int8 network on an Arduino.

Importing labkit selects tf_keras (Keras 2) for TensorFlow, before TensorFlow is imported
anywhere: with Keras 3, int8 conversion of an LSTM fails and tensorflow-model-optimization
rejects models. Import labkit first in a notebook, then ``from labkit.keras import keras``.
"""

import os
import sys

__version__ = "0.1.0"

if "tensorflow" in sys.modules and os.environ.get("TF_USE_LEGACY_KERAS") != "1":
    import warnings

    warnings.warn(
        "TensorFlow was imported before labkit, so it may be using Keras 3. "
        "Import labkit first (or set TF_USE_LEGACY_KERAS=1) so every model uses tf_keras.",
        stacklevel=2,
    )
os.environ["TF_USE_LEGACY_KERAS"] = "1"
# TensorFlow's C++ INFO/WARNING lines are noise in a lesson; errors still show.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from labkit.errors import LabkitError  # noqa: E402

__all__ = ["LabkitError", "__version__"]
