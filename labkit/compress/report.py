"""Where does an int8 model lose accuracy? Layer by layer, int8 against float.

:func:`quantization_error_report` runs the float Keras model and the int8 ``.tflite`` (LiteRT's
reference kernels, every intermediate tensor kept) on the same samples, dequantizes each
layer's int8 output with its scale and zero point, and compares it with the float layer's
output:

* **output SNR (dB)** — signal-to-noise ratio, 10·log10(Σ float² / Σ (float − int8)²). Each
  bit of resolution is worth about 6 dB; int8 tops out near 48 dB. The error *accumulates*:
  a layer's SNR includes the error that reached its input, so look for the layer where it drops.
* **error (steps)** — the root-mean-square error measured in quantization steps (the scale):
  rounding alone gives about 0.29 steps; much more means error carried from earlier layers or
  a range too wide for the values (a few outliers stretching the scale).
* **weight SNR (dB)** — the same ratio for the layer's weights quantized the converter's way
  (symmetric, one scale per output channel, max |w| / 127): the error rounding adds here.

Int8 tensors are matched to Keras layers by name (the converter names each tensor after the
layers fused into it); layers folded into another (batch normalization into a convolution)
have no tensor of their own and are left out.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from labkit.compress.quantize import dequantize, quantize
from labkit.errors import LabkitError


def snr_db(reference: np.ndarray, approx: np.ndarray) -> float:
    """10·log10(Σ reference² / Σ (reference − approx)²); inf when they are equal."""
    ref = np.asarray(reference, np.float64)
    noise = float(np.sum((ref - np.asarray(approx, np.float64)) ** 2))
    signal = float(np.sum(ref ** 2))
    if noise == 0.0:
        return float("inf")
    if signal == 0.0:
        return float("-inf")
    return 10.0 * np.log10(signal / noise)


def weight_snr_db(kernel: np.ndarray) -> float:
    """SNR of a kernel quantized symmetrically to int8, one scale per output channel (last axis)."""
    w = np.asarray(kernel, np.float32)
    flat = w.reshape(-1, w.shape[-1])
    scale = np.abs(flat).max(axis=0) / 127.0
    scale[scale == 0] = 1.0
    q = np.clip(np.round(flat / scale), -127, 127) * scale
    return snr_db(flat, q)


def _layer_of(tensor_name: str, layer_names: list[str]) -> str | None:
    parts = [f"/{part}/" for part in tensor_name.split(";")]
    hits = [n for n in layer_names if any(f"/{n}/" in part for part in parts)]
    return hits[-1] if hits else None


def _flat_layers(model) -> list:
    from labkit.keras import keras

    out = []
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            out.extend(_flat_layers(layer))
        elif not isinstance(layer, keras.layers.InputLayer):
            out.append(layer)
    return out


def quantization_error_report(model, tflite: bytes, x: np.ndarray, samples: int = 200, seed: int = 0) -> pd.DataFrame:
    """One row per layer of ``model`` that has an int8 tensor in ``tflite``: op, scale, SNRs, error in steps.

    ``x``: float samples (``samples`` of them, drawn at random, are used).
    """
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    from labkit.keras import keras

    x = np.asarray(x, np.float32)
    if tuple(x.shape[1:]) != tuple(model.input_shape[1:]):
        raise LabkitError(f"samples must have shape (N, {', '.join(map(str, model.input_shape[1:]))}) like the "
                          f"model's input; got {x.shape}")
    rng = np.random.default_rng(seed)
    x = x[np.sort(rng.choice(len(x), size=min(samples, len(x)), replace=False))]

    interp = Interpreter(model_content=bytes(tflite), experimental_op_resolver_type=OpResolverType.BUILTIN_REF,
                         experimental_preserve_all_tensors=True)
    interp.allocate_tensors()
    details = {d["index"]: d for d in interp.get_tensor_details()}
    (inp,) = interp.get_input_details()
    outputs = {d["index"] for d in interp.get_output_details()}
    if inp["dtype"] != np.int8:
        raise LabkitError("the report compares a full-int8 model with its float original; convert with "
                          "labkit.compress.quantize.to_int8_tflite first")

    layers = _flat_layers(model)
    names = [l.name for l in layers]
    matched: dict[str, tuple[int, str]] = {}  # layer -> (tensor index, op name); the last op wins
    for op in interp._get_ops_details():
        if op["op_name"] in ("QUANTIZE", "DEQUANTIZE"):
            continue
        for t in op["outputs"]:
            d = details[t]
            if d["dtype"] != np.int8:
                continue
            layer = names[-1] if t in outputs else _layer_of(d["name"], names)
            if layer is not None:
                matched[layer] = (t, op["op_name"])
    if not matched:
        raise LabkitError("no tensor of the .tflite could be matched to a layer of the model by name: "
                          "is it the model this .tflite was converted from?")
    rows_layers = [l for l in layers if l.name in matched]

    probe = keras.Model(model.inputs, [l.output for l in rows_layers])
    floats = probe.predict(x, batch_size=256, verbose=0)
    floats = floats if isinstance(floats, list) else [floats]

    ints = {l.name: [] for l in rows_layers}
    q_in = quantize(x, *inp["quantization"])
    for i in range(len(x)):
        interp.set_tensor(inp["index"], q_in[i : i + 1])
        interp.invoke()
        for l in rows_layers:
            ints[l.name].append(interp.get_tensor(matched[l.name][0])[0].copy())

    rows = []
    for l, f in zip(rows_layers, floats):
        t, op_name = matched[l.name]
        scale, zp = details[t]["quantization"]
        q = dequantize(np.stack(ints[l.name]), scale, zp).reshape(f.shape)
        kernel = next((w.numpy() for w in l.weights if w.name.split("/")[-1].startswith("kernel")), None)
        rows.append({
            "layer": l.name,
            "op": op_name,
            "output shape": "x".join(map(str, f.shape[1:])),
            "scale": float(scale),
            "zero point": int(zp),
            "weight SNR (dB)": weight_snr_db(kernel) if kernel is not None else np.nan,
            "output SNR (dB)": snr_db(f, q),
            "error (steps)": float(np.sqrt(np.mean((f - q) ** 2)) / scale),
        })
    return pd.DataFrame(rows)


class TensorValue:
    """One tensor of an int8 model after an inference: its values, scale(s) and zero point(s)."""

    def __init__(self, name: str, values: np.ndarray, scales: np.ndarray, zero_points: np.ndarray, axis: int):
        self.name = name
        self.values = values
        self.scales = scales  # one per tensor, or one per channel along `axis`
        self.zero_points = zero_points
        self.axis = axis

    @property
    def scale(self):
        """The scale: a float when there is one for the whole tensor, else the array of per-channel scales."""
        return float(self.scales[0]) if self.scales.size == 1 else self.scales

    @property
    def zero_point(self):
        return int(self.zero_points[0]) if self.zero_points.size == 1 else self.zero_points

    def __repr__(self):
        return f"TensorValue({self.name!r}, shape={self.values.shape}, dtype={self.values.dtype.name})"


def int8_op_io(tflite: bytes, x: np.ndarray, op: str = "FULLY_CONNECTED", occurrence: int = -1) -> dict:
    """Inputs and output of one op of an int8 model, for one float sample ``x``, read from the reference interpreter.

    ``op``: the op's name ("FULLY_CONNECTED", "CONV_2D", ...); ``occurrence``: which of them (0 = first,
    -1 = last). Returns ``{"input": ..., "weights": ..., "bias": ..., "output": ...}`` for ops with
    weights (else ``{"input", "output"}``), each a :class:`TensorValue`.
    """
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    interp = Interpreter(model_content=bytes(tflite), experimental_op_resolver_type=OpResolverType.BUILTIN_REF,
                         experimental_preserve_all_tensors=True)
    interp.allocate_tensors()
    (inp,) = interp.get_input_details()
    if inp["dtype"] != np.int8:
        raise LabkitError("int8_op_io reads full-int8 models: convert with to_int8_tflite")
    ops = [o for o in interp._get_ops_details() if o["op_name"] == op]
    if not ops:
        names = sorted({o["op_name"] for o in interp._get_ops_details()})
        raise LabkitError(f"the model has no {op} op; it has {', '.join(names)}")
    chosen = ops[occurrence]
    sample = np.asarray(x, np.float32).reshape(inp["shape"])
    interp.set_tensor(inp["index"], quantize(sample, *inp["quantization"]))
    interp.invoke()
    details = {d["index"]: d for d in interp.get_tensor_details()}

    def value(index: int) -> TensorValue:
        d = details[index]
        qp = d["quantization_parameters"]
        return TensorValue(d["name"], interp.get_tensor(index).copy(), np.asarray(qp["scales"], np.float64),
                           np.asarray(qp["zero_points"], np.int64), int(qp["quantized_dimension"]))

    ins = [int(i) for i in chosen["inputs"] if i >= 0]
    result = {"input": value(ins[0]), "output": value(int(chosen["outputs"][0]))}
    if len(ins) > 1:
        result["weights"] = value(ins[1])
    if len(ins) > 2:
        result["bias"] = value(ins[2])
    return result
