"""Convolution and pooling by hand, in numpy — what ``Conv2D`` and ``MaxPooling2D`` compute.

Written for reading, not for speed: one loop over the output positions, each output the sum of
a patch of the input times the kernel. Shapes and layouts are those of Keras, so the results
can be compared with a layer directly:

- an image is ``(height, width)`` or ``(height, width, channels)``;
- kernels are ``(k_h, k_w)`` (one 2-D filter) or ``(k_h, k_w, c_in, c_out)`` (a Conv2D kernel);
- ``padding`` is ``"valid"`` (no padding: the kernel stays inside the image) or ``"same"``
  (zeros around the image so that, with stride 1, the output is as large as the input; TF puts
  the odd extra zero at the bottom and right).

As in every deep-learning framework, "convolution" here is the cross-correlation: the kernel is
not flipped. (Flipping it would only relabel the learned weights.)

The cost formulas (:func:`conv_cost`, :func:`separable_cost`) are the ones derived in lessons 05 and 05b;
:mod:`labkit.measure` counts the same things from a Keras model, so the two can be compared.
"""

from __future__ import annotations

import math

import numpy as np

from labkit.errors import LabkitError

__all__ = [
    "FILTERS",
    "output_size",
    "same_padding",
    "conv2d",
    "pool2d",
    "conv_cost",
    "separable_cost",
]

#: Hand-made 3x3 filters, each a feature detector: edges in one direction, a blur, a sharpener.
FILTERS: dict[str, np.ndarray] = {
    "vertical edges": np.array([[1, 0, -1], [2, 0, -2], [1, 0, -1]], np.float32),   # Sobel x
    "horizontal edges": np.array([[1, 2, 1], [0, 0, 0], [-1, -2, -1]], np.float32),  # Sobel y
    "diagonal edges": np.array([[0, 1, 2], [-1, 0, 1], [-2, -1, 0]], np.float32),
    "blur": np.full((3, 3), 1 / 9, np.float32),
    "sharpen": np.array([[0, -1, 0], [-1, 5, -1], [0, -1, 0]], np.float32),
}


def _check_padding(padding: str) -> str:
    p = padding.lower()
    if p not in ("valid", "same"):
        raise LabkitError(f"padding must be 'valid' or 'same', not {padding!r}")
    return p


def output_size(n: int, k: int, stride: int = 1, padding: str = "valid") -> int:
    """Output length along one axis of an input of length ``n`` (as Keras computes it).

    valid: ``floor((n - k) / stride) + 1``; same: ``ceil(n / stride)``.
    """
    if stride < 1 or k < 1 or n < 1:
        raise LabkitError(f"need n >= 1, k >= 1 and stride >= 1, got n={n}, k={k}, stride={stride}")
    if _check_padding(padding) == "same":
        return math.ceil(n / stride)
    if k > n:
        raise LabkitError(f"a {k}-wide kernel does not fit in {n} values without padding: use padding='same'")
    return (n - k) // stride + 1


def same_padding(n: int, k: int, stride: int = 1) -> tuple[int, int]:
    """Zeros (before, after) that 'same' padding adds along an axis of length ``n``: the odd one after."""
    out = output_size(n, k, stride, "same")
    total = max((out - 1) * stride + k - n, 0)
    return total // 2, total - total // 2


def _pad(image: np.ndarray, kh: int, kw: int, stride: tuple[int, int], padding: str) -> np.ndarray:
    if padding == "valid":
        return image
    top, bottom = same_padding(image.shape[0], kh, stride[0])
    left, right = same_padding(image.shape[1], kw, stride[1])
    return np.pad(image, ((top, bottom), (left, right), (0, 0)))


def _pair(v) -> tuple[int, int]:
    return (int(v), int(v)) if np.isscalar(v) else (int(v[0]), int(v[1]))


def conv2d(
    image: np.ndarray,
    kernels: np.ndarray,
    bias: np.ndarray | float | None = None,
    stride: int | tuple[int, int] = 1,
    padding: str = "valid",
) -> np.ndarray:
    """2-D convolution of one image, by hand.

    ``image`` (H, W) or (H, W, C_in); ``kernels`` (k_h, k_w) or (k_h, k_w, C_in, C_out) as in a
    Keras ``Conv2D``'s ``kernel``; ``bias`` one value per output channel. Returns (H', W') for a
    2-D image and a 2-D kernel, else (H', W', C_out).
    """
    image = np.asarray(image, np.float64)
    kernels = np.asarray(kernels, np.float64)
    flat = image.ndim == 2 and kernels.ndim == 2
    if image.ndim == 2:
        image = image[:, :, None]
    if kernels.ndim == 2:
        kernels = kernels[:, :, None, None]
    if image.ndim != 3 or kernels.ndim != 4:
        raise LabkitError(
            f"conv2d takes an image (H, W[, C]) and kernels (k, k[, C_in, C_out]); got {image.shape} and {kernels.shape}"
        )
    kh, kw, c_in, c_out = kernels.shape
    if image.shape[2] != c_in:
        raise LabkitError(f"the image has {image.shape[2]} channels but the kernels expect {c_in}")
    sh, sw = _pair(stride)
    padding = _check_padding(padding)
    out_h = output_size(image.shape[0], kh, sh, padding)
    out_w = output_size(image.shape[1], kw, sw, padding)
    x = _pad(image, kh, kw, (sh, sw), padding)

    out = np.zeros((out_h, out_w, c_out))
    for i in range(out_h):
        for j in range(out_w):
            patch = x[i * sh : i * sh + kh, j * sw : j * sw + kw, :]  # (kh, kw, c_in)
            # each output channel: sum over the patch of patch * that channel's kernel
            out[i, j, :] = np.tensordot(patch, kernels, axes=3)
    if bias is not None:
        out += np.asarray(bias, np.float64)
    return out[:, :, 0] if flat else out


def pool2d(image: np.ndarray, size: int = 2, stride: int | None = None, padding: str = "valid",
           mode: str = "max") -> np.ndarray:
    """Max or average pooling of one image (H, W[, C]) over ``size`` x ``size`` windows.

    ``stride`` defaults to ``size`` (non-overlapping windows, as in Keras). With 'same' padding
    the windows at the border only average the values inside the image, as TF does.
    """
    if mode not in ("max", "average"):
        raise LabkitError(f"mode must be 'max' or 'average', not {mode!r}")
    image = np.asarray(image, np.float64)
    flat = image.ndim == 2
    if flat:
        image = image[:, :, None]
    stride = size if stride is None else stride
    padding = _check_padding(padding)
    out_h = output_size(image.shape[0], size, stride, padding)
    out_w = output_size(image.shape[1], size, stride, padding)
    top = same_padding(image.shape[0], size, stride)[0] if padding == "same" else 0
    left = same_padding(image.shape[1], size, stride)[0] if padding == "same" else 0
    out = np.zeros((out_h, out_w, image.shape[2]))
    for i in range(out_h):
        for j in range(out_w):
            r0, c0 = i * stride - top, j * stride - left
            window = image[max(r0, 0) : r0 + size, max(c0, 0) : c0 + size, :]
            out[i, j, :] = window.max(axis=(0, 1)) if mode == "max" else window.mean(axis=(0, 1))
    return out[:, :, 0] if flat else out


def conv_cost(k: int, c_in: int, c_out: int, out_h: int = 1, out_w: int = 1, bias: bool = True) -> dict:
    """Parameters and MACs of a standard k x k convolution.

    Every output channel has one k x k kernel **per input channel**:
    params = k*k*c_in*c_out (+ c_out biases); MACs = out_h*out_w*c_out*k*k*c_in.
    """
    return {"params": k * k * c_in * c_out + (c_out if bias else 0), "MACs": out_h * out_w * c_out * k * k * c_in}


def separable_cost(k: int, c_in: int, c_out: int, out_h: int = 1, out_w: int = 1, bias: bool = True) -> dict:
    """Parameters and MACs of a depthwise-separable convolution (depthwise k x k, then pointwise 1x1).

    depthwise: one k x k kernel per input channel (k*k*c_in weights, out_h*out_w*c_in*k*k MACs);
    pointwise: a 1x1 convolution mixing the channels (c_in*c_out weights, out_h*out_w*c_in*c_out MACs),
    plus c_out biases, as in Keras's ``SeparableConv2D``. Compared with :func:`conv_cost` the cost shrinks by ``1/c_out + 1/k**2``.
    """
    params = k * k * c_in + c_in * c_out + (c_out if bias else 0)
    return {"params": params, "MACs": out_h * out_w * c_in * (k * k + c_out)}
