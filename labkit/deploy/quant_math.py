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


class OutOfRange(ValueError):
    """A scale whose integer form does not fit the kernels' arithmetic (lowering names the op)."""


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
    with np.errstate(over="ignore"):  # a huge scale x beta: -inf, whose exp is 0 (float32, as in C)
        scale = f32(-f32(input_scale) * f32(beta))
        return np.array([_libm.expf(float(f32(scale * f32(d)))) for d in range(256)], np.float32)


def softmax_fixed_point(input_scale: float, beta: float) -> tuple[int, int, int]:
    """TFLM's int8 softmax parameters: (input multiplier, left shift, smallest difference kept)."""
    integer_bits = 5
    real = min(float(beta) * float(input_scale) * (1 << (31 - integer_bits)), (1 << 31) - 1.0)
    multiplier, left_shift = quantize_multiplier(real, TFLM)
    max_input_rescaled = 1.0 * ((1 << integer_bits) - 1) * (1 << (31 - integer_bits)) / (1 << left_shift)
    return multiplier, left_shift, -int(math.floor(max_input_rescaled))


# ---- int8 -> int8 functions of one value (TANH, LOGISTIC): 256-entry tables ------------------
#
# LiteRT's reference kernels build such a table at prepare time with float math; TFLite Micro
# computes gemmlowp fixed-point tanh/logistic per element. Either way the output depends on
# the input byte alone, so labkit-nn stores a 256-byte table per op and the board does one
# load per element. Both tables are computed here by the reference's own arithmetic.

_libm.tanhf.restype = ctypes.c_float
_libm.tanhf.argtypes = [ctypes.c_float]
_libm.roundf.restype = ctypes.c_float
_libm.roundf.argtypes = [ctypes.c_float]


def litert_lut(kind: str, in_scale: float, in_zp: int, out_scale: float, out_zp: int) -> np.ndarray:
    """LiteRT's PopulateLookupTable<int8_t>: float math, indexed by input value + 128."""
    f32 = np.float32
    inverse_scale = f32(f32(1) / f32(out_scale))
    table = np.empty(256, np.int8)
    for val in range(-128, 128):
        x = f32(f32(in_scale) * f32(val - in_zp))
        if kind == "TANH":
            y = f32(_libm.tanhf(float(x)))
        else:  # LOGISTIC: 1.0f / (1.0f + std::exp(-value))
            y = f32(f32(1) / f32(f32(1) + f32(_libm.expf(float(-x)))))
        rescaled = f32(_libm.roundf(float(f32(y * inverse_scale))))
        q = int(f32(rescaled + f32(out_zp)))
        table[val + 128] = max(-128, min(127, q))
    return table


# gemmlowp fixed point, in Python integers (int32 semantics), for TFLM's tanh / logistic.

def _wrap32(x: int) -> int:
    """x as a C int32 would hold it (two's complement wrap-around)."""
    return (x + 2**31) % 2**32 - 2**31


def _srdhm(a: int, b: int) -> int:
    """SaturatingRoundingDoublingHighMul: (a * b * 2) / 2^32, rounded."""
    if a == b == -(2**31):
        return 2**31 - 1
    ab = a * b
    nudge = (1 << 30) if ab >= 0 else 1 - (1 << 30)
    v = ab + nudge
    q = abs(v) >> 31  # C's division truncates toward zero
    return q if v >= 0 else -q


def _rdbpot(x: int, e: int) -> int:
    """RoundingDivideByPOT: x / 2^e, ties away from zero."""
    mask = (1 << e) - 1
    rem = x & mask
    th = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> e) + (1 if rem > th else 0)


def _srmbpot(x: int, e: int) -> int:
    """SaturatingRoundingMultiplyByPOT."""
    if e < 0:
        return _rdbpot(x, -e)
    if e == 0:
        return x
    th = (1 << (31 - e)) - 1
    if x > th:
        return 2**31 - 1
    if x < -th:
        return -(2**31)
    return _wrap32(x << e)


def _exp_on_interval(a: int) -> int:
    """exp(a) for a in [-1/4, 0), Q0.31: Taylor series around -1/8."""
    c = 1895147668
    x = _wrap32(a + (1 << 28))
    x2 = _srdhm(x, x)
    x3 = _srdhm(x2, x)
    x4 = _srdhm(x2, x2)
    poly = _rdbpot(_wrap32(_srdhm(_wrap32(_rdbpot(x4, 2) + x3), 715827883) + x2), 1)
    return _wrap32(c + _srdhm(c, _wrap32(x + poly)))


def _exp_on_negative_values(a: int, integer_bits: int) -> int:
    """exp(a) for a <= 0 in Q(integer_bits); result Q0.31 (gemmlowp's barrel shifter)."""
    frac = 31 - integer_bits
    quarter = 1 << (frac - 2)
    amq = (a & (quarter - 1)) - quarter
    result = _exp_on_interval(_srmbpot(amq, integer_bits))
    remainder = amq - a
    for k, m in enumerate((1672461947, 1302514674, 790015084, 290630308, 39332535, 720401, 242)):
        exponent = k - 2
        if integer_bits > exponent and remainder & (1 << (frac + exponent)):
            result = _srdhm(result, m)
    if integer_bits > 5:
        clamp = -(1 << (36 - integer_bits)) if integer_bits <= 36 else 0
        if a < clamp:
            result = 0
    return 2**31 - 1 if a == 0 else result


def _newton_reciprocal_q2(a: int) -> int:
    """1 / (1 + a) for a in [0, 1), as Q2.29, by gemmlowp's three Newton-Raphson steps."""
    s = a + 2**31 - 1
    half_denominator = int((s + (1 if s >= 0 else -1)) / 2)  # RoundingHalfSum(a, One)
    x = _wrap32(1515870810 + _srdhm(half_denominator, -1010580540))  # 48/17 - 32/17 * d
    for _ in range(3):
        one_minus = _wrap32((1 << 29) - _srdhm(half_denominator, x))
        x = _wrap32(x + _srmbpot(_srdhm(x, one_minus), 2))
    return x


def _one_over_one_plus_x(a: int) -> int:
    return _srmbpot(_newton_reciprocal_q2(a), 1)  # Rescale<0>(ExactMulByPot<-1>(x))


def _one_minus_x_over_one_plus_x(a: int) -> int:
    return _srmbpot(_wrap32(_newton_reciprocal_q2(a) - (1 << 29)), 2)  # Rescale<0>(x - One)


def _fixed_logistic(a: int, integer_bits: int) -> int:
    """gemmlowp::logistic of a Q(integer_bits) number; result Q0.31."""
    if a == 0:
        return 1 << 30
    positive = _one_over_one_plus_x(_exp_on_negative_values(_wrap32(-abs(a)), integer_bits))
    return positive if a > 0 else _wrap32((2**31 - 1) - positive)


def _fixed_tanh(a: int, integer_bits: int) -> int:
    """gemmlowp::tanh of a Q(integer_bits) number; result Q0.31."""
    if a == 0:
        return 0
    n = a if a < 0 else _wrap32(-a)
    # -tanh(n) for n < 0: ExactMulByPot<1> keeps the raw value and adds an integer bit
    t = _one_minus_x_over_one_plus_x(_exp_on_negative_values(n, integer_bits + 1))
    return _wrap32(-t) if a < 0 else t


def _mbqm_double(x: int, m: int, shift: int) -> int:
    left, right = max(shift, 0), max(-shift, 0)
    return _rdbpot(_srdhm(_wrap32(x * (1 << left)), m), right)


def tflm_lut(kind: str, in_scale: float, in_zp: int, out_scale: float, out_zp: int) -> np.ndarray:
    """TFLite Micro's int8 tanh / logistic (gemmlowp fixed point, Q4.27 input), as a table."""
    integer_bits = 4
    q, left_shift = math.frexp(float(in_scale) * float(1 << (31 - integer_bits)))
    v = q * (1 << 31)
    multiplier = int(math.copysign(math.floor(abs(v) + 0.5), v))
    radius = int(math.floor(((1 << integer_bits) - 1) * (1 << (31 - integer_bits)) / (1 << left_shift)))
    table = np.empty(256, np.int8)
    for val in range(-128, 128):
        x = val - in_zp
        if x <= -radius:
            out = -128
        elif x >= radius:
            out = 127
        else:
            x_q4 = _mbqm_double(x, multiplier, left_shift)
            if kind == "TANH":
                out = _rdbpot(_fixed_tanh(x_q4, integer_bits), 24)
            else:
                out = _rdbpot(_fixed_logistic(x_q4, integer_bits), 23) - 128
        table[val + 128] = max(-128, min(127, out))
    return table
