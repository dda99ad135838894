/*
 * labkit-nn runtime: helpers of the Cortex-M4 DSP-extension paths (ACLE intrinsics of arm_acle.h).
 *
 * LK_DSP is 1 where the compiler targets a core with the DSP extension (__ARM_FEATURE_DSP: the
 * Cortex-M4 of the Nano 33 BLE's nRF52840, the M7, M33 ...) and LABKIT_NN_NO_DSP is not defined;
 * the kernels then take their SIMD paths. Elsewhere (the host build, a Cortex-M0) LK_DSP is 0
 * and only the plain C kernels, the readable reference, are compiled. Both give the same bytes.
 *
 * The packing trick every DSP path uses: one 32-bit load holds 4 int8 values b0 b1 b2 b3.
 * SXTB16 sign-extends bytes 0 and 2 into two int16 halves (b0, b2); SXTB16 of the word
 * rotated by 8 gives (b1, b3). Unpacking inputs and weights the same way pairs every input with
 * its own weight, so SMLAD (acc + lo*lo + hi*hi) adds two products in one instruction, in an
 * order that does not matter for an int32 sum. SXTAB16 adds a packed int16 pair while unpacking:
 * that is how the input offset (minus the zero point, -127..128) is added, and x + offset
 * (-255..255) still fits an int16.
 */
#ifndef LABKIT_NN_DSP_H
#define LABKIT_NN_DSP_H

#include <stdint.h>
#include <string.h>

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP && !defined(LABKIT_NN_NO_DSP)
#define LK_DSP 1
/* The ACLE intrinsics where the compiler has them (GCC 10 and later, clang); GCC before 10 (the
 * Arduino mbed core's toolchain is GCC 7) has an arm_acle.h without them, so there each is one
 * instruction of inline assembly, the same instruction. LK_DSP_ASM forces that form (a test). */
#if (defined(__clang__) || (defined(__GNUC__) && __GNUC__ >= 10)) && !defined(LK_DSP_ASM)
#include <arm_acle.h>
#define lk_sxtb16(x) ((uint32_t)__sxtb16(x))
#define lk_sxtab16(a, x) ((uint32_t)__sxtab16((a), (x)))
#define lk_smlad(a, b, acc) __smlad((a), (b), (acc))
#define lk_smlabb(a, b, acc) __smlabb((int32_t)(a), (int32_t)(b), (acc))
#define lk_smlatt(a, b, acc) __smlatt((int32_t)(a), (int32_t)(b), (acc))
#define lk_ssat8(x) __ssat((x), 8)
#else
static inline uint32_t lk_sxtb16(uint32_t x) {
    uint32_t r;
    __asm("sxtb16 %0, %1" : "=r"(r) : "r"(x));
    return r;
}
static inline uint32_t lk_sxtab16(uint32_t a, uint32_t x) {
    uint32_t r;
    __asm("sxtab16 %0, %1, %2" : "=r"(r) : "r"(a), "r"(x));
    return r;
}
static inline int32_t lk_smlad(uint32_t a, uint32_t b, int32_t acc) {
    int32_t r;
    __asm("smlad %0, %1, %2, %3" : "=r"(r) : "r"(a), "r"(b), "r"(acc));
    return r;
}
static inline int32_t lk_smlabb(uint32_t a, uint32_t b, int32_t acc) {
    int32_t r;
    __asm("smlabb %0, %1, %2, %3" : "=r"(r) : "r"(a), "r"(b), "r"(acc));
    return r;
}
static inline int32_t lk_smlatt(uint32_t a, uint32_t b, int32_t acc) {
    int32_t r;
    __asm("smlatt %0, %1, %2, %3" : "=r"(r) : "r"(a), "r"(b), "r"(acc));
    return r;
}
static inline int32_t lk_ssat8(int32_t x) {
    int32_t r;
    __asm("ssat %0, #8, %1" : "=r"(r) : "r"(x));
    return r;
}
#endif
#else
#define LK_DSP 0
#endif

/* Requantization, x * multiplier * 2^shift with gemmlowp's two roundings, computed in one 64-bit
 * product: exactly lk_multiply_by_quantized_multiplier for every multiplier but INT32_MIN (the
 * generator's multipliers are in [2^30, 2^31) or 0). Why it is the same:
 *   the doubled high product, (ab + nudge) / 2^31 truncated, equals floor((ab + 2^30) / 2^31)
 *   for both signs of ab (for ab < 0 the nudge 1 - 2^30 and the truncation are a ceiling);
 *   the rounding shift of v by e (half away from zero) is floor((v + 2^(e-1) - [v < 0]) / 2^e);
 *   and floor(floor(n / a) + c) / b) = floor((n + c*a) / (a*b)), so both fold into one shift of
 *   ab + 2^30 + (2^(e-1) - [ab + 2^30 < 0]) * 2^31 by 31 + e bits (multipliers >= 0; see below).
 * Plain C, so the host tests compare it with the reference helper (tests/test_kernels_dsp.py). */
static inline int32_t lk_requantize(int32_t x, int32_t multiplier, int shift) {
    if (shift >= 0) return (int32_t)(((int64_t)(int32_t)((uint32_t)x << shift) * multiplier + (1LL << 30)) >> 31);
    const int e = -shift;
    /* [x < 0] stands for [ab + 2^30 < 0]: they differ only where -2^30 <= ab < 0, and there both give 0 */
    int64_t k = (1LL << 30) + (int64_t)((int32_t)(1u << (e - 1)) - (x < 0)) * (1LL << 31);
    int64_t r = (int64_t)x * multiplier + k; /* one SMLAL; |r| < 2^63 */
    return (int32_t)(r >> 32) >> (e - 1);    /* floor(r / 2^(31 + e)): the high word, no 64-bit shift */
}

/* lk_requantize for a shift of -2 or less (the usual case: a multiplier below 1/2), with the
 * rounding constant 2^30 + 2^(30+e) - [x < 0] * 2^31 built as its two words: the low one is 2^30
 * with bit 31 set for x < 0, the high one 2^(e-2) less the borrow of that bit. e1 = e - 1 and
 * round_hi = 2^(e-2) depend on the channel only, so the DSP paths compute them once for the
 * accumulators of that channel: AND, EOR, ADD, SMLAL, ASR per accumulator. */
static inline int32_t lk_requantize_e2(int32_t x, int32_t multiplier, int32_t round_hi, int e1) {
    const uint32_t lo = ((uint32_t)x & 0x80000000u) ^ 0x40000000u;
    const int32_t hi = round_hi + (x >> 31);
    const uint64_t r = (((uint64_t)(uint32_t)hi << 32) | lo) + (uint64_t)((int64_t)x * multiplier); /* SMLAL */
    return (int32_t)(uint32_t)(r >> 32) >> e1;
}

#if LK_DSP

/* 4 bytes from any address (the Cortex-M4 loads unaligned words; memcpy keeps C's aliasing rules). */
static inline uint32_t lk_read4(const int8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* int16 pair (v, v) */
static inline uint32_t lk_pack2(int32_t v) { return ((uint32_t)v & 0xFFFFu) | ((uint32_t)v << 16); }

/* (b1, b3) of a word: SXTB16 with its built-in rotation. GCC 12's arm_acle.h has no __ror and does
 * not fuse a rotate into SXTB16 (measured: one instruction more per word), hence the asm. */
static inline uint32_t lk_sxtb16_ror8(uint32_t x) {
    uint32_t r;
    __asm("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(x));
    return r;
}

/* (b1 + a.lo, b3 + a.hi) */
static inline uint32_t lk_sxtab16_ror8(uint32_t a, uint32_t x) {
    uint32_t r;
    __asm("sxtab16 %0, %1, %2, ror #8" : "=r"(r) : "r"(a), "r"(x));
    return r;
}

/* The int8 dot product of two vectors (no offsets), 4 products per step with SMLAD. */
static inline int32_t lk_dot_s8_dsp(const int8_t *a, const int8_t *b, int32_t n, int32_t acc) {
    int32_t i = n >> 2;
    while (i--) {
        uint32_t x = lk_read4(a), w = lk_read4(b);
        a += 4;
        b += 4;
        acc = lk_smlad(lk_sxtb16(x), lk_sxtb16(w), acc);
        acc = lk_smlad(lk_sxtb16_ror8(x), lk_sxtb16_ror8(w), acc);
    }
    for (i = 0; i < (n & 3); ++i) acc += (int32_t)a[i] * (int32_t)b[i];
    return acc;
}

#endif /* LK_DSP */

#endif /* LABKIT_NN_DSP_H */
