"""The quantization arithmetic TFLite computes at model-preparation time, done the same way.

These run in Python at generation time; the C runtime only sees the resulting integers.
Each function follows the double-precision steps of TFLite's quantization_util so that the
integers match the reference interpreter's exactly.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import math

import numpy as np

LITERT, TFLM = "litert", "tflm"


def quantize_multiplier(real: float, reference: str = LITERT) -> tuple[int, int]:
    """``real`` as (Q0.31 multiplier, power-of-two shift): real ~= m * 2^shift / 2^31."""
    if real == 0.0:
        return 0, 0
    q, shift = math.frexp(real)
    v = q * (1 << 31)  # exact in double
    q_fixed = int(math.copysign(math.floor(abs(v) + 0.5), v))  # TfLiteRound: ties away from zero
    if q_fixed == (1 << 31):
        q_fixed //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    if reference == LITERT and shift > 30:  # single rounding cannot shift further left
        return (1 << 31) - 1, 30
    return q_fixed, shift


def activation_range(activation: str, scale: float, zero_point: int) -> tuple[int, int]:
    """The int8 clamp range of a fused activation, as TFLite's CalculateActivationRangeQuantized."""
    f32 = np.float32

    def q(x: float) -> int:
        v = f32(x) / f32(scale)
        return int(zero_point + math.copysign(math.floor(abs(float(v)) + 0.5), float(v)))

    lo, hi = -128, 127
    if activation == "RELU":
        lo = max(lo, q(0.0))
    elif activation == "RELU6":
        lo, hi = max(lo, q(0.0)), min(hi, q(6.0))
    elif activation == "RELU_N1_TO_1":
        lo, hi = max(lo, q(-1.0)), min(hi, q(1.0))
    elif activation != "NONE":
        raise ValueError(activation)
    return lo, hi


_libm = ctypes.CDLL(ctypes.util.find_library("m") or "libm.so.6")
_libm.expf.restype = ctypes.c_float
_libm.expf.argtypes = [ctypes.c_float]


def softmax_exp_table(input_scale: float, beta: float) -> np.ndarray:
    """LiteRT's softmax table: expf(-input_scale * beta * d) for d = 0..255, in float32.

    Computed here with the C library's expf (as LiteRT does) and stored in the generated
    C as constants, so the board needs no expf and gets the same bits.
    """
    f32 = np.float32
    scale = f32(-f32(input_scale) * f32(beta))
    return np.array([_libm.expf(float(f32(scale * f32(d)))) for d in range(256)], np.float32)


def softmax_fixed_point(input_scale: float, beta: float) -> tuple[int, int, int]:
    """TFLM's int8 softmax parameters: (input multiplier, left shift, smallest difference kept)."""
    integer_bits = 5
    real = min(float(beta) * float(input_scale) * (1 << (31 - integer_bits)), (1 << 31) - 1.0)
    multiplier, left_shift = quantize_multiplier(real, TFLM)
    max_input_rescaled = 1.0 * ((1 << integer_bits) - 1) * (1 << (31 - integer_bits)) / (1 << left_shift)
    return multiplier, left_shift, -int(math.floor(max_input_rescaled))
