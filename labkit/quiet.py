"""Capture what C/C++ code prints on stderr (file descriptor 2), which Python cannot silence.

TensorFlow's converter and TFLite Micro print from C++; in a lesson that is noise, and
TFLM's arena size is only ever printed there.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile


class Captured:
    text = ""


@contextlib.contextmanager
def capture_stderr():
    """Redirect fd 2 to a temporary file for the block; the text is in the yielded object after it."""
    captured = Captured()
    sys.stderr.flush()
    with tempfile.TemporaryFile() as tmp:
        saved = os.dup(2)
        try:
            os.dup2(tmp.fileno(), 2)
            yield captured
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            captured.text = tmp.read().decode(errors="replace")
