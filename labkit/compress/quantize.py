"""Full-int8 post-training quantization, and evaluation of a .tflite through the reference interpreter."""

from __future__ import annotations

import warnings

import numpy as np

from labkit import reference
from labkit.errors import LabkitError
from labkit.quiet import capture_stderr


def to_int8_tflite(model, representative_x: np.ndarray, samples: int = 200, seed: int = 0,
                   float_io: bool = False) -> bytes:
    """Convert a Keras model to a full-int8 .tflite: int8 weights, activations, input and output.

    ``float_io=True`` keeps a float32 input and output (the converter adds QUANTIZE and
    DEQUANTIZE ops), for code that feeds floats directly.

    ``representative_x`` (training data, float32, shaped like the model's input without the
    batch axis) calibrates the activation ranges; ``samples`` of them are drawn at random.
    The model is rebuilt with a batch size of 1 so the graph has static shapes.
    """
    x = np.asarray(representative_x)
    expected = tuple(model.input_shape[1:])
    if x.ndim != len(expected) + 1 or tuple(x.shape[1:]) != expected:
        raise LabkitError(
            f"the representative dataset must have shape (N, {', '.join(map(str, expected))}) like the model's input; "
            f"got {x.shape}"
        )
    if not np.issubdtype(x.dtype, np.floating) or not np.all(np.isfinite(x)):
        raise LabkitError(f"the representative dataset must be finite float values (got dtype {x.dtype})")
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(x), size=min(samples, len(x)), replace=False)

    def representative():
        for i in pick:
            yield [x[i : i + 1].astype(np.float32)]

    def configure(conv, tf):
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = representative
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = tf.float32 if float_io else tf.int8
        conv.inference_output_type = tf.float32 if float_io else tf.int8

    return _convert(model, configure, "full int8")


def quantize(x: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """Float to int8 as the generated C does: float32 x / scale, rounded half away from zero."""
    v = np.asarray(x, np.float32) / np.float32(scale)
    r = np.sign(v) * np.floor(np.abs(v) + np.float32(0.5))
    return np.clip(r + zero_point, -128, 127).astype(np.int8)


def dequantize(q: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    return (np.asarray(q, np.float32) - zero_point) * np.float32(scale)


def predict_tflite(model: bytes, x: np.ndarray, interpreter: str = "litert") -> np.ndarray:
    """Run an int8 .tflite on float inputs: quantize, run the reference interpreter, dequantize."""
    (inp,), (out,) = reference.io_details(model)
    q = quantize(x, inp.scale, inp.zero_point) if inp.dtype == np.int8 else np.asarray(x, inp.dtype)
    y = reference.run(model, q, reference=interpreter)[0]
    return dequantize(y, out.scale, out.zero_point) if out.dtype == np.int8 else y


def evaluate_tflite(model: bytes, x: np.ndarray, y: np.ndarray, interpreter: str = "litert") -> float:
    """Classification accuracy of a .tflite on float inputs ``x`` with labels ``y``."""
    scores = predict_tflite(model, x, interpreter)
    return float(np.mean(np.argmax(scores.reshape(len(x), -1), axis=-1) == y))


# --- the other conversions, for comparison ------------------------------------------------------

def _convert(model, configure, what: str) -> bytes:
    """Convert ``model`` (batch size fixed to 1) after ``configure(converter)``, quietly."""
    from labkit.keras import tf
    from labkit.models import with_batch_size

    conv = tf.lite.TFLiteConverter.from_keras_model(with_batch_size(model, 1))
    configure(conv, tf)
    log = None
    try:
        with warnings.catch_warnings(), capture_stderr() as log:
            # e.g. "Statistics for quantized inputs were expected": int8 I/O is what we ask for
            warnings.simplefilter("ignore")
            return conv.convert()
    except Exception as e:
        detail = log.text.strip()[-2000:] if log is not None else ""
        raise LabkitError(f"TFLite conversion ({what}) failed: {e}\n{detail}".rstrip()) from e


def to_float_tflite(model) -> bytes:
    """A float32 .tflite: no quantization at all (the baseline for size and accuracy)."""
    return _convert(model, lambda conv, tf: None, "float32")


def to_dynamic_range_tflite(model) -> bytes:
    """Dynamic-range quantization: int8 weights, float32 activations, input and output.

    No representative data is needed. Weights take a quarter of the space, but every layer
    still computes in float (the int8 weights are scaled back on the fly), so a board needs an
    FPU and TFLite Micro's hybrid kernels; labkit-nn refuses such models.
    """

    def configure(conv, tf):
        conv.optimizations = [tf.lite.Optimize.DEFAULT]

    return _convert(model, configure, "dynamic range")


def to_float16_tflite(model) -> bytes:
    """Float16 weights (half the size), dequantized to float32 when the model loads; float compute."""

    def configure(conv, tf):
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.target_spec.supported_types = [tf.float16]

    return _convert(model, configure, "float16")


def tflite_kind(model: bytes) -> str:
    """What a .tflite computes in: 'int8' (full integer), 'dynamic range', 'float16' or 'float32'."""
    from ai_edge_litert import schema_py_generated as schema

    m = schema.Model.GetRootAs(bytes(model), 0)
    g = m.Subgraphs(0)
    types = {g.Tensors(i).Type() for i in range(g.TensorsLength())}
    TT = schema.TensorType
    if TT.INT8 in types and _all_ops_integer(m, g, schema):
        return "int8"
    if TT.FLOAT16 in types:
        return "float16"
    if TT.INT8 in types:
        return "dynamic range"
    return "float32"


def _all_ops_integer(m, g, schema) -> bool:
    """True when every op other than QUANTIZE/DEQUANTIZE reads int8/int16/int32 tensors only."""
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    TT = schema.TensorType
    for i in range(g.OperatorsLength()):
        op = g.Operators(i)
        code = m.OperatorCodes(op.OpcodeIndex())
        name = names.get(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()), "")
        if name in ("QUANTIZE", "DEQUANTIZE"):
            continue
        for j in range(op.InputsLength()):
            t = op.Inputs(j)
            if t >= 0 and g.Tensors(t).Type() in (TT.FLOAT32, TT.FLOAT16):
                return False
    return True
