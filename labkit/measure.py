"""What a model costs: parameters, multiply-accumulates (MACs) and activations, per layer.

MACs are counted per inference (batch of one) from each layer's shapes, the way the
literature counts them: a dense layer does in x out, a convolution out_h x out_w x out_c x
k_h x k_w x in_c (divided by groups), a depthwise convolution out_h x out_w x channels x
k_h x k_w, an LSTM 4 x units x (inputs + units) per time step. Layers without
multiplications (pooling, activations, reshapes) count 0. An axis of unknown length (None, as
in a model for sequences of any length) counts as 1: the costs are then per time step.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def _shape(s) -> tuple:
    """The shape without the batch axis; an unknown axis (None) stays None."""
    if isinstance(s, list):  # several outputs: the first
        s = s[0]
    return tuple(None if d is None else int(d) for d in s[1:])


def _known(shape: tuple) -> tuple:
    """The shape with unknown axes counted as 1 (costs per time step of a variable-length sequence)."""
    return tuple(1 if d is None else d for d in shape)


def layer_macs(layer) -> int:
    """Multiply-accumulates of one Keras layer for one sample."""
    kind = type(layer).__name__
    try:
        in_shape = _known(_shape(layer.input_shape))
        out_shape = _known(_shape(layer.output_shape))
    except (AttributeError, RuntimeError):
        return 0
    out_elems = int(np.prod(out_shape)) if out_shape else 0
    if kind == "Dense":
        return int(np.prod(in_shape[:-1], dtype=np.int64)) * in_shape[-1] * layer.units
    if kind in ("Conv1D", "Conv2D"):
        k = int(np.prod(layer.kernel_size))
        groups = getattr(layer, "groups", 1) or 1
        return out_elems * k * (in_shape[-1] // groups)
    if kind in ("DepthwiseConv2D", "DepthwiseConv1D"):
        return out_elems * int(np.prod(layer.kernel_size))
    if kind in ("SeparableConv1D", "SeparableConv2D"):
        k = int(np.prod(layer.kernel_size))
        spatial = int(np.prod(out_shape[:-1]))
        depth = in_shape[-1] * layer.depth_multiplier
        return spatial * depth * k + spatial * depth * out_shape[-1]
    if kind in ("LSTM", "GRU", "SimpleRNN"):
        steps, features = in_shape[0], in_shape[-1]
        gates = {"LSTM": 4, "GRU": 3, "SimpleRNN": 1}[kind]
        return steps * gates * layer.units * (features + layer.units)
    if kind in ("Functional", "Sequential", "Model"):
        return sum(layer_macs(l) for l in layer.layers)
    return 0


def layer_table(model) -> pd.DataFrame:
    """One row per layer: name, type, output shape, parameters, MACs and output values."""
    rows = []
    for layer in model.layers:
        if type(layer).__name__ == "InputLayer":
            continue
        try:
            out = _shape(layer.output_shape)
        except (AttributeError, RuntimeError):
            out = ()
        rows.append({
            "layer": layer.name,
            "type": type(layer).__name__,
            "output shape": "x".join("?" if d is None else str(d) for d in out),
            "params": int(layer.count_params()),
            "MACs": layer_macs(layer),
            "activations": int(np.prod(_known(out))) if out else 0,
        })
    table = pd.DataFrame(rows)
    if len(table):
        total = {"layer": "total", "type": "", "output shape": "", "params": int(table["params"].sum()),
                 "MACs": int(table["MACs"].sum()), "activations": int(table["activations"].max())}
        table = pd.concat([table, pd.DataFrame([total])], ignore_index=True)
    return table


def count_macs(model) -> int:
    """MACs of one inference of a Keras model."""
    return sum(layer_macs(l) for l in model.layers)


def count_nonzero_params(model) -> int:
    """Parameters that are not exactly zero (what unstructured pruning reduces)."""
    return int(sum(np.count_nonzero(w) for w in model.get_weights()))


def gzip_bytes(data: bytes) -> int:
    """Size of ``data`` gzip-compressed (level 9, no timestamp): what a file of mostly zeros really holds."""
    import gzip

    return len(gzip.compress(bytes(data), compresslevel=9, mtime=0))


def _arm_tools_present() -> bool:
    import shutil

    return shutil.which("arm-none-eabi-gcc") is not None and shutil.which("qemu-system-arm") is not None


def measure_model(model, representative_x: np.ndarray | None = None, tflite: bytes | None = None,
                  device: bool | None = None, samples: int = 10, seed: int = 0) -> dict:
    """A Keras model measured on the device's terms, as one dict.

    - ``params``, ``nonzero_params``: all parameters, and those not pruned to zero;
    - ``macs``: multiply-accumulates per inference (zeros are multiplied too);
    - ``tflite_bytes``, ``gzip_bytes``: the full-int8 ``.tflite`` and its gzip-compressed size
      (where unstructured sparsity shows: runs of zeros compress);
    - ``flash_bytes``, ``ram_bytes``, ``instructions``: the labkit-nn C of that ``.tflite`` linked
      for the Cortex-M4 of the Nano 33 BLE and run on ``samples`` random inputs in QEMU
      (instructions per inference, averaged; see :func:`labkit.verify.verify`).

    The int8 model is ``tflite`` when given, else converted from ``model`` with
    ``representative_x``. ``device``: True to require the ARM tools, False to skip the
    Cortex-M4 figures, None (default) to measure them when the tools are installed (else None).
    """
    from labkit.compress.quantize import to_int8_tflite
    from labkit.errors import LabkitError

    if tflite is None:
        if representative_x is None:
            raise LabkitError("measure_model needs representative_x (training samples) to convert the model to "
                              "int8, or the int8 .tflite itself as tflite=")
        tflite = to_int8_tflite(model, representative_x, seed=seed)
    tflite = bytes(tflite)
    result = {
        "params": int(model.count_params()),
        "nonzero_params": count_nonzero_params(model),
        "macs": count_macs(model),
        "tflite_bytes": len(tflite),
        "gzip_bytes": gzip_bytes(tflite),
        "flash_bytes": None,
        "ram_bytes": None,
        "instructions": None,
    }
    if device is None:
        device = _arm_tools_present()
    if device:
        from labkit.verify import verify

        report = verify(tflite, samples=samples, target="cortex-m4", references=("tflm",), seed=seed)
        if not report.bit_exact:
            raise LabkitError("the generated C does not match TFLite Micro on this model: please report it")
        for key in ("flash_bytes", "ram_bytes", "instructions"):
            result[key] = int(report.metrics[key])
    return result
