"""An LSTM model that consumes its sequence a few time steps per call, its state carried between calls.

A Keras LSTM converted to int8 takes a whole window, [1, T, features], and starts every
window from a zero state. On a board that reads one sample at a time, the same network can
instead take ``k`` steps per call (k = 1: one reading) and keep its hidden and cell state from
one call to the next: after T / k calls from a reset it has seen the whole window and gives
the window's answer, and in between it gives the answer for the readings so far.

:func:`streaming_tflite` rewrites the .tflite for that: the time axis of the input and of
every tensor that carries it becomes ``k`` long; weights, quantization and ops are unchanged,
so each step is computed with exactly the same integer arithmetic. It refuses a model in
which some op after the LSTM mixes time steps (``Flatten`` + ``Dense`` over all steps): only
ops that work on each step alone may follow, or a STRIDED_SLICE that keeps the last step
(what ``return_sequences=False`` converts to). The rewritten model is what the generated C
runs in its streaming mode (``generate_c(..., lstm_state="carry")``), and what the reference
interpreters run step by step, with their state carried between invokes, in ``verify``.

The file is rewritten through the flatbuffer schema's generated object API, never by hand.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from labkit.errors import UnsupportedModelError

LSTM = "UNIDIRECTIONAL_SEQUENCE_LSTM"
# ops that compute each time step alone when the time axis is not their last axis
PER_STEP = {"FULLY_CONNECTED", "SOFTMAX", "RELU", "RELU6", "RELU_N1_TO_1", "LOGISTIC", "TANH", "QUANTIZE",
            "DEQUANTIZE", "HARD_SWISH", "LEAKY_RELU"}


@dataclass(frozen=True)
class Streaming:
    """How a model runs as a stream."""

    steps_per_call: int  # time steps each call consumes
    sequence_steps: int  # time steps of the original model's window
    output_per_step: bool  # the output has a time axis (one answer per step) or is the last step's

    @property
    def calls_per_sequence(self) -> int:
        return self.sequence_steps // self.steps_per_call

    def as_dict(self) -> dict:
        return dict(steps_per_call=self.steps_per_call, sequence_steps=self.sequence_steps,
                    output_per_step=self.output_per_step)


def _fail(why: str) -> UnsupportedModelError:
    return UnsupportedModelError(f"this model cannot run one step at a time with its LSTM state carried: {why}")


def streaming_tflite(model, steps_per_call: int = 1) -> tuple[bytes, Streaming]:
    """The .tflite rewritten to take ``steps_per_call`` time steps per invoke, and how it streams.

    ``model``: an int8 .tflite (bytes or path) whose input is a sequence [1, T, features] read
    by a UNIDIRECTIONAL_SEQUENCE_LSTM. ``steps_per_call`` must divide T."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    data = bytes(model) if isinstance(model, (bytes, bytearray)) else open(model, "rb").read()
    from labkit.deploy.tflite_reader import read_tflite

    read_tflite(data)  # a damaged or hostile file gets its one clear error first
    m = schema.ModelT.InitFromObj(schema.Model.GetRootAs(data, 0))
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    g = m.subgraphs[0]
    if len(g.inputs) != 1 or len(g.outputs) != 1:
        raise _fail(f"it has {len(g.inputs)} inputs and {len(g.outputs)} outputs (labkit-nn: one of each)")
    x = g.tensors[g.inputs[0]]
    shape = [int(n) for n in x.shape]
    if len(shape) != 3 or shape[0] != 1:
        raise _fail(f"its input has shape {shape}; expected a sequence [1, time steps, features]")
    steps = shape[1]
    if isinstance(steps_per_call, bool) or not isinstance(steps_per_call, (int, np.integer)) or \
            not 1 <= steps_per_call <= steps or steps % steps_per_call:
        raise _fail(f"steps_per_call {steps_per_call!r} must be a whole number that divides the {steps} time steps "
                    "(1 for one step per call)")
    k = int(steps_per_call)
    timed = {g.inputs[0]: 1}  # tensor index -> its time axis
    seen_lstm = False
    for i, op in enumerate(g.operators):
        code = m.operatorCodes[op.opcodeIndex]
        kind = names.get(max(code.builtinCode, code.deprecatedBuiltinCode), "?")
        ins = [t for t in op.inputs if t >= 0 and t in timed]
        if not ins:
            continue
        if kind == LSTM:
            opts = op.builtinOptions
            if list(op.inputs).index(ins[0]) != 0 or len(ins) > 1 or (opts is not None and opts.timeMajor):
                raise _fail(f"op {i} (LSTM) must read the sequence as its input, batch first (time_major False)")
            seen_lstm = True
            timed[op.outputs[0]] = 1
        elif kind == "STRIDED_SLICE":
            consts = [_const(m, g, t) for t in op.inputs[1:4]]
            o = op.builtinOptions
            axis = timed[op.inputs[0]]
            last = (all(c is not None and len(c) > axis for c in consts) and consts[0][axis] == -1
                    and consts[2][axis] == 1 and o is not None and (o.shrinkAxisMask >> axis) & 1
                    and not (o.beginMask >> axis) & 1 and not o.ellipsisMask and not o.newAxisMask)
            if not last:
                raise _fail(f"op {i} (STRIDED_SLICE) does not keep only the last time step")
        elif kind in PER_STEP:
            axis = timed[ins[0]]
            out = g.tensors[op.outputs[0]]
            if axis == len(g.tensors[ins[0]].shape) - 1:
                raise _fail(f"op {i} ({kind}) works along the time axis")
            if kind == "FULLY_CONNECTED" and len(out.shape) != len(g.tensors[ins[0]].shape):
                axis = 0  # keep_num_dims False: [batch * time, units]
            timed[op.outputs[0]] = axis
        else:
            raise _fail(f"op {i} ({kind}) mixes time steps (e.g. Flatten + Dense over the whole sequence); "
                        "use LSTM(return_sequences=False), or only per-step layers after the LSTM")
    if not seen_lstm:
        raise _fail("it has no LSTM reading its input, so there is no state to carry; run it on whole windows")
    for t, axis in timed.items():
        tensor = g.tensors[t]
        if int(tensor.shape[axis]) != steps:
            raise _fail(f"tensor {t} has shape {list(tensor.shape)}; expected {steps} time steps on axis {axis}")
        tensor.shape = np.array([k if a == axis else int(n) for a, n in enumerate(tensor.shape)], np.int32)
        if tensor.shapeSignature is not None and len(tensor.shapeSignature) == len(tensor.shape):
            tensor.shapeSignature = np.array(tensor.shape, np.int32)
    builder = flatbuffers.Builder(len(data) + 1024)
    builder.Finish(m.Pack(builder), file_identifier=b"TFL3")
    out = bytes(builder.Output())
    read_tflite(out)
    return out, Streaming(k, steps, g.outputs[0] in timed)


def _const(m, g, t: int) -> np.ndarray | None:
    if t < 0:
        return None
    buf = m.buffers[g.tensors[t].buffer]
    if buf is None or buf.data is None or len(buf.data) == 0:
        return None
    return np.frombuffer(bytes(bytearray(buf.data)), "<i4")
