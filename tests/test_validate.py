"""The validation layer: every broken or hostile .tflite named in issue 12 gets one clear
LabkitError (exit 2 from the CLI, no traceback), and the same message for the same problem on
any op."""

import numpy as np
import pytest
from ai_edge_litert import schema_py_generated as schema

from labkit import cli
from labkit.deploy.codegen import generate_c
from labkit.deploy.tflite_reader import read_tflite
from labkit.errors import LabkitError
from tflite_edit import _load, _pack

OPS = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}


@pytest.fixture(scope="module")
def models():
    """A small MLP (RESHAPE, FULLY_CONNECTED, SOFTMAX) and a CNN with a PAD after its CONV_2D."""
    from labkit import models as builders
    from labkit.compress.quantize import to_int8_tflite
    from labkit.keras import keras

    rng = np.random.default_rng(0)
    keras.utils.set_random_seed(0)
    mlp = to_int8_tflite(builders.mlp((10, 3), 4, hidden=(8,)), rng.normal(size=(64, 10, 3)).astype("float32"))
    inp = keras.Input((6, 6, 1))
    # (a padding in front of a convolution is folded into it: this one stays a PAD op)
    h = keras.layers.ZeroPadding2D(((1, 2), (0, 1)))(keras.layers.Conv2D(3, 3, activation="relu")(inp))
    out = keras.layers.Softmax()(keras.layers.Dense(3)(keras.layers.Flatten()(h)))
    cnn = to_int8_tflite(keras.Model(inp, out), rng.normal(size=(64, 6, 6, 1)).astype("float32"))
    return {"mlp": mlp, "cnn": cnn}


def _edit(tflite: bytes, change) -> bytes:
    model = _load(tflite)
    change(model, model.subgraphs[0])
    return _pack(model)


def _ops(model, g, kind):
    return [op for op in g.operators if OPS[max(model.operatorCodes[op.opcodeIndex].builtinCode,
                                                model.operatorCodes[op.opcodeIndex].deprecatedBuiltinCode)] == kind]


def _refused(tflite: bytes, tmp_path, *words):
    with pytest.raises(LabkitError) as e:
        generate_c(tflite, tmp_path / "out")
    msg = str(e.value)
    assert "\n" not in msg
    for w in words:
        assert w in msg, msg
    assert not (tmp_path / "out").exists()  # nothing written for a refused model
    return msg


def test_every_truncation_is_one_clear_error(models, tmp_path):
    tflite = models["cnn"]
    for k in sorted({*range(8, 200, 7), *np.linspace(200, len(tflite) - 1, 40).astype(int).tolist()}):
        with pytest.raises(LabkitError, match=r"^not a valid \.tflite: .* \(at [a-z ]+[0-9]*\)"):
            read_tflite(tflite[:k])


def test_indexes_out_of_range_name_the_op(models, tmp_path):
    def output_999(model, g):
        g.operators[1].outputs = [999]

    def opcode_77(model, g):
        g.operators[0].opcodeIndex = 77

    def buffer_99(model, g):
        g.tensors[3].buffer = 99

    _refused(_edit(models["mlp"], output_999), tmp_path, "output 0 is tensor 999", "(at op 1 (FULLY_CONNECTED))")
    _refused(_edit(models["mlp"], opcode_77), tmp_path, "operator code 77", "(at op 0)")
    _refused(_edit(models["mlp"], buffer_99), tmp_path, "buffer index 99", "(at tensor 3)")


def test_constant_data_must_fit_the_shape(models, tmp_path):
    def grow(model, g):
        (conv,) = _ops(model, g, "CONV_2D")
        g.tensors[conv.inputs[1]].shape = [8, 3, 3, 3]  # 108 bytes of filter read as 216

    _refused(_edit(models["cnn"], grow), tmp_path, "needs 216 bytes", "holds 27", "(at tensor")


@pytest.mark.parametrize("scale, words", [(0.0, "scale 0.0"), (float("nan"), "scale nan"), (float("inf"), "scale inf")])
def test_input_scale_must_be_finite_and_positive(models, tmp_path, scale, words):
    def bad_scale(model, g):
        g.tensors[g.inputs[0]].quantization.scale = [scale]

    _refused(_edit(models["mlp"], bad_scale), tmp_path, "not a valid .tflite: quantization " + words,
             "finite and above 0", f"(at tensor {_load(models['mlp']).subgraphs[0].inputs[0]})")


def test_zero_point_must_be_in_the_type_range(models, tmp_path):
    def huge(model, g):
        g.tensors[g.inputs[0]].quantization.zeroPoint = [580000000000000000]

    _refused(_edit(models["mlp"], huge), tmp_path, "zero point 580000000000000000 is outside the int8 range [-128, 127]")


def test_softmax_beta_must_be_finite(models, tmp_path):
    def nan_beta(model, g):
        (softmax,) = _ops(model, g, "SOFTMAX")
        softmax.builtinOptions.beta = float("nan")

    _refused(_edit(models["mlp"], nan_beta), tmp_path, "softmax beta nan", "(SOFTMAX)")


def test_a_graph_input_with_constant_data_is_refused(models, tmp_path):
    def constant_input(model, g):
        (fc, *_) = _ops(model, g, "FULLY_CONNECTED")
        g.inputs = [fc.inputs[1]]

    _refused(_edit(models["mlp"], constant_input), tmp_path, "graph input tensor", "has constant data")


def test_fused_tanh_gets_the_same_message_on_fully_connected_and_conv(models, tmp_path):
    tanh = schema.ActivationFunctionType.TANH
    for name, kind in (("mlp", "FULLY_CONNECTED"), ("cnn", "CONV_2D")):
        def fused_tanh(model, g, kind=kind):
            _ops(model, g, kind)[0].builtinOptions.fusedActivationFunction = tanh

        msg = _refused(_edit(models[name], fused_tanh), tmp_path / name, f"({kind}): fused activation TANH is not "
                       "supported (labkit-nn fuses NONE, RELU, RELU6, RELU_N1_TO_1)")
        assert msg.startswith("op ")


@pytest.mark.parametrize("per_channel", [True, False])
def test_transposed_fully_connected_weights_are_refused(models, tmp_path, per_channel):
    def transpose(model, g):
        fc = _ops(model, g, "FULLY_CONNECTED")[0]
        w = g.tensors[fc.inputs[1]]
        w.shape = list(w.shape)[::-1]  # same bytes, [inputs, outputs]: read out of bounds if accepted
        if not per_channel:
            w.quantization.scale, w.quantization.zeroPoint = w.quantization.scale[:1], [0]

    msg = _refused(_edit(models["mlp"], transpose), tmp_path)
    if per_channel:  # its 8 scales no longer match the axis they are for
        assert "8 per-channel scales along axis 0 of a [30, 8] tensor" in msg
    else:
        assert "(FULLY_CONNECTED)" in msg and "weights must be [outputs, inputs]" in msg


@pytest.mark.parametrize("before, after, words", [(-5, 1, "negative padding -5"), (1000, 1, "output shape")])
def test_pad_amounts_must_be_non_negative_and_match_the_output(models, tmp_path, before, after, words):
    def pads(model, g):
        (pad,) = _ops(model, g, "PAD")
        t = g.tensors[pad.inputs[1]]
        values = np.frombuffer(bytes(model.buffers[t.buffer].data), "<i4").copy().reshape(-1, 2)
        values[2] = (before, after)
        model.buffers[t.buffer].data = values.astype("<i4").reshape(-1).view(np.uint8)

    _refused(_edit(models["cnn"], pads), tmp_path, words, "(PAD)")


def test_ops_out_of_execution_order_are_refused(models, tmp_path):
    def swap(model, g):
        g.operators[1], g.operators[2] = g.operators[2], g.operators[1]

    _refused(_edit(models["mlp"], swap), tmp_path, "before the op that writes it runs", "not in execution order")


def test_cli_codegen_of_a_broken_model_exits_2_with_one_line(models, tmp_path, capsys):
    path = tmp_path / "broken.tflite"
    path.write_bytes(models["mlp"][: len(models["mlp"]) // 2])
    assert cli.main(["codegen", str(path), "-o", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("labkit: error: not a valid .tflite: ") and err.count("\n") == 1
    assert "Traceback" not in err and not (tmp_path / "c").exists()


def test_cli_verify_of_a_broken_model_with_data_exits_2_with_one_line(models, tmp_path, capsys):
    path = tmp_path / "broken.tflite"
    path.write_bytes(models["mlp"][: len(models["mlp"]) // 2])
    np.save(tmp_path / "x.npy", np.zeros((3, 10, 3), np.float32))
    assert cli.main(["verify", str(path), "--data", str(tmp_path / "x.npy")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("labkit: error: not a valid .tflite: ") and "Traceback" not in err


def test_a_bias_that_can_overflow_the_accumulator_is_refused(models, tmp_path):
    """Found by the fuzzer (a word set to 0x7fffffff): UBSan's signed overflow in the C if accepted."""
    def huge_bias(model, g):
        (conv,) = _ops(model, g, "CONV_2D")
        t = g.tensors[conv.inputs[2]]
        values = np.frombuffer(bytes(model.buffers[t.buffer].data), "<i4").copy()
        values[0] = 2**31 - 1
        model.buffers[t.buffer].data = values.view(np.uint8)

    _refused(_edit(models["cnn"], huge_bias), tmp_path, "(CONV_2D): a bias of 2147483647 plus 9 int8 products can "
             "overflow the int32 accumulator")
