"""Arduino sketches: the generated gesture and serial apps run on the emulated Cortex-M4
(QEMU, with labkit's Arduino-API layer) and print what the int8 model computes in Python."""

import json
import re

import numpy as np
import pytest

from labkit import reference
from labkit.compress.quantize import dequantize, quantize
from labkit.datasets import make_gestures, normalize_imu
from labkit.deploy.sketch import OpVersionWarning, arduino_float, write_sketch
from labkit.errors import LabkitError
from labkit.verify import gesture_replay, run_sketch_emulated

LABELS = ["punch", "flex", "wave", "circle"]


def _python_answers(tflite, x_float):
    (inp,), (out,) = reference.io_details(tflite)
    q = quantize(x_float, inp.scale, inp.zero_point)
    scores = reference.run(tflite, q, "tflm")[0].reshape(len(q), -1)
    return np.argmax(scores, axis=1), dequantize(scores, out.scale, out.zero_point)


@pytest.mark.parametrize("board,imu_library", [("nano33ble_sense", "Arduino_LSM9DS1"),
                                               ("nano33ble_sense_rev2", "Arduino_BMI270_BMM150")])
def test_gesture_sketch_prints_the_models_labels_on_the_emulated_board(gesture_tflite, tmp_path, board, imu_library):
    folder, cm = write_sketch(gesture_tflite, tmp_path, sketch="gestures", name="gesture_model",
                              labels=LABELS, app="gesture", board=board)
    assert (folder / "gestures.ino").is_file()  # the folder is named after its .ino
    assert f"#include <{imu_library}.h>" in (folder / "gestures.ino").read_text()
    x, _, _ = make_gestures(n_per_class=4, seed=21)
    lines = run_sketch_emulated(folder, tmp_path / "emu", readings=gesture_replay(x))
    printed = [l for l in lines if re.match(r"^\w+ scores=", l)]
    assert len(printed) == len(x)
    # the sketch as linked: the model's constants in flash and its arena in RAM, plus the app's code
    sizes = json.loads((tmp_path / "emu" / "sketch_sizes.json").read_text())
    assert sizes["flash_bytes"] > cm.weights_bytes and sizes["ram_bytes"] >= cm.arena_bytes
    want_labels, want_scores = _python_answers(gesture_tflite, normalize_imu(x))
    assert [l.split()[0] for l in printed] == [LABELS[i] for i in want_labels]
    for line, scores in zip(printed, want_scores):
        got = re.search(r"scores=([\d.,-]+)", line).group(1).split(",")
        assert got == [arduino_float(s, 3) for s in scores]  # character for character, as the board prints
        assert int(re.search(r"us=(\d+)", line).group(1)) > 0
    # the RGB LED shows the class: red for class 0, green for 1, blue for 2, red+green for 3
    leds, colour = [], {}
    for l in lines:
        m = re.match(r"#led ([RGB])=(on|off)", l)
        if m:
            colour[m.group(1)] = m.group(2) == "on"
            if m.group(1) == "B":
                leds.append((colour["R"], colour["G"], colour["B"]))
    expected = {0: (True, False, False), 1: (False, True, False), 2: (False, False, True), 3: (True, True, False)}
    assert leds[1:] == [expected[i] for i in want_labels]  # the first is setup() switching all off


def test_serial_sketch_answers_lines_of_numbers(gesture_tflite, tmp_path):
    folder, _ = write_sketch(gesture_tflite, tmp_path, sketch="serial_app", name="m", labels=LABELS, app="serial")
    x, _, _ = make_gestures(n_per_class=1, seed=3)
    xn = normalize_imu(x)
    text = "".join(",".join(f"{v:.9g}" for v in sample.reshape(-1)) + "\n" for sample in xn)
    text += "1,2,3\n"  # a short line gets an error, not a crash
    lines = run_sketch_emulated(folder, tmp_path / "emu", serial_input=text)
    answers = [l for l in lines if " scores=" in l]
    want_labels, _ = _python_answers(gesture_tflite, xn)
    assert [a.split()[0] for a in answers] == [LABELS[i] for i in want_labels]
    assert any(l.startswith("error: expected 714 numbers, got 3") for l in lines)


def test_labels_with_quotes_are_escaped_and_the_sketch_still_builds(gesture_tflite, tmp_path):
    odd = ['say "hi"', "back\\slash", "naïve", "two words"]
    folder, _ = write_sketch(gesture_tflite, tmp_path, sketch="odd", name="m", labels=odd, app="gesture")
    x, _, _ = make_gestures(n_per_class=1, seed=4)
    lines = run_sketch_emulated(folder, tmp_path / "emu", readings=gesture_replay(x))
    printed = [l for l in lines if " scores=" in l]
    assert len(printed) == 4 and all(any(l.startswith(o) for o in odd) for l in printed)


def test_sketch_needs_no_ml_library(gesture_tflite, tmp_path):
    folder, _ = write_sketch(gesture_tflite, tmp_path, sketch="g", name="m", labels=LABELS, app="gesture",
                             board="nano33ble_sense_rev2")
    includes = set()
    for f in folder.iterdir():
        if f.suffix in (".ino", ".c", ".h"):
            includes |= set(re.findall(r'#include [<"]([^>"]+)[>"]', f.read_text()))
    local = {f.name for f in folder.iterdir()}
    assert {i for i in includes if i not in local} <= {"math.h", "stdint.h", "stddef.h", "string.h",
                                                       "Arduino_BMI270_BMM150.h",
                                                       "arm_acle.h"}  # the compiler's own (DSP intrinsics)


def test_gesture_app_refuses_a_model_of_another_shape(tmp_path):
    from labkit.compress.quantize import to_int8_tflite
    from labkit.keras import keras

    inp = keras.Input((10,))
    tfl = to_int8_tflite(keras.Model(inp, keras.layers.Dense(3)(inp)), np.random.default_rng(0).normal(size=(20, 10)).astype("float32"))
    with pytest.raises(LabkitError, match=r"--app gesture needs .* 119 x 6"):
        write_sketch(tfl, tmp_path, sketch="g", app="gesture")
    assert not (tmp_path / "g").exists()  # nothing half-written


def test_an_existing_foreign_folder_is_left_alone(gesture_tflite, tmp_path):
    (tmp_path / "g").mkdir()
    (tmp_path / "g" / "notes.txt").write_text("mine")
    with pytest.raises(LabkitError, match="not empty and was not made by labkit"):
        write_sketch(gesture_tflite, tmp_path, sketch="g")
    assert [p.name for p in (tmp_path / "g").iterdir()] == ["notes.txt"]


@pytest.mark.parametrize("bad", ["", "-x", "a b", "x" * 64, "quote\"s"])
def test_bad_sketch_names(gesture_tflite, tmp_path, bad):
    with pytest.raises(LabkitError, match="cannot name an Arduino sketch"):
        write_sketch(gesture_tflite, tmp_path, sketch=bad)


def test_model_too_large_for_the_board_names_sizes_and_budget(tmp_path):
    from labkit.compress.quantize import to_int8_tflite
    from labkit.keras import keras

    inp = keras.Input((1000,))
    tfl = to_int8_tflite(keras.Model(inp, keras.layers.Dense(1000)(inp)), np.random.default_rng(0).normal(size=(10, 1000)).astype("float32"), samples=10)
    with pytest.raises(LabkitError, match=r"does not fit the Arduino Nano 33 BLE Sense.*1,00\d,\d\d\d bytes.*983,040"):
        write_sketch(tfl, tmp_path, sketch="big")
    assert not (tmp_path / "big").exists()


@pytest.mark.parametrize("rev", [1, 2])
def test_capture_sketch_output_loads_as_the_same_gestures(tmp_path, rev):
    """The hand-written capture sketch, on the emulated board, prints what labkit's loader reads back,
    built as shipped (Rev1) and with BOARD_REV set to 2 as a Rev2 owner does."""
    from pathlib import Path

    from labkit.datasets import load_gesture_csv

    shipped = Path(__file__).resolve().parents[1] / "arduino" / "capture_imu" / "capture_imu.ino"
    sketch = tmp_path / "capture_imu"
    sketch.mkdir()
    text = shipped.read_text()
    assert "#define BOARD_REV 1 " in text
    (sketch / "capture_imu.ino").write_text(text.replace("#define BOARD_REV 1 ", f"#define BOARD_REV {rev} "))
    x, _, _ = make_gestures(n_per_class=1, seed=11)
    lines = run_sketch_emulated(sketch, tmp_path / "emu", readings=gesture_replay(x))
    text = "\n".join(l for l in lines if not l.startswith("#")) + "\n"
    (tmp_path / "cap.csv").write_text(text)
    got = load_gesture_csv(tmp_path / "cap.csv")
    want = np.array([[[float(arduino_float(v, 3)) for v in row] for row in w] for w in x], np.float32)
    assert lines[0] == "aX,aY,aZ,gX,gY,gZ"
    assert np.array_equal(got, want)


def test_version_checking_tflm_problems():
    """Versions within the old resolver's ranges pass; newer ones and ops it never had are named."""
    from labkit.deploy.sketch import version_checking_tflm_problems

    assert version_checking_tflm_problems([("CONV_2D", 3), ("SOFTMAX", 1), ("DEQUANTIZE", 2)]) == []
    assert version_checking_tflm_problems([("CONV_2D", 5), ("MEAN", 1), ("SOFTMAX", 2)]) == [
        "CONV_2D version 5 (they know up to 3)", "MEAN (not in those libraries at all)",
        "SOFTMAX version 2 (they know up to 1)"]


def test_sketch_cli_prints_the_op_version_warning(gesture_tflite, tmp_path, capsys):
    from labkit import cli

    model = tmp_path / "gestures.tflite"
    model.write_bytes(gesture_tflite)
    assert cli.main(["sketch", str(model), "-o", str(tmp_path / "out"), "--backend", "tflm"]) == 0
    err = capsys.readouterr().err
    assert err.startswith("warning: this model's ops are newer than old TFLite Micro libraries")
    assert cli.main(["sketch", str(model), "-o", str(tmp_path / "out2")]) == 0  # labkit-nn: no library, no warning
    assert "warning" not in capsys.readouterr().err


def test_tflm_backend_sketch(gesture_tflite, tmp_path):
    """The TFLite Micro variant: same app code, exactly the model's ops, an arena at least what TFLM measured,
    and the model bytes embedded unchanged. (The Arduino TFLM library is not on this machine, so this
    sketch is checked here, not compiled; the labkit-nn one is run on the emulated board above.)"""
    from labkit.deploy.tflite_reader import read_tflite

    with pytest.warns(OpVersionWarning) as caught:
        folder, cm = write_sketch(gesture_tflite, tmp_path, sketch="g", name="m", labels=LABELS, app="gesture",
                                  backend="tflm")
    assert cm is None
    cpp = (folder / "m.cpp").read_text()
    # an int8 SOFTMAX is version 2 or newer, which the old version-checking libraries never had
    versions = {op.kind: op.version for op in read_tflite(gesture_tflite).ops}
    assert versions["SOFTMAX"] >= 2
    assert f"SOFTMAX version {versions['SOFTMAX']} (they know up to 1)" in str(caught[0].message)
    assert "Chirale_TensorFlowLite" in str(caught[0].message)
    assert f"SOFTMAX (version {versions['SOFTMAX']}; too new for them: they know up to 1)" in cpp
    fc_ok = versions["FULLY_CONNECTED"] <= 4
    assert ("FULLY_CONNECTED version" in str(caught[0].message)) is not fc_ok
    adders = re.findall(r"resolver\.(Add\w+)\(\);", cpp)
    kinds = sorted({op.kind for op in read_tflite(gesture_tflite).ops})
    assert sorted(adders) == sorted({"RESHAPE": "AddReshape", "FULLY_CONNECTED": "AddFullyConnected",
                                     "SOFTMAX": "AddSoftmax"}[k] for k in kinds)
    assert f"MicroMutableOpResolver<{len(adders)}>" in cpp
    arena = int(re.search(r"#define M_ARENA_BYTES (\d+)", (folder / "m.h").read_text()).group(1))
    assert arena >= reference.tflm_arena_bytes(gesture_tflite)
    data = (folder / "m_data.cpp").read_text()
    assert "alignas(16)" in data
    embedded = bytes(int(h, 16) for h in re.findall(r"0x([0-9a-f]{2})", data))
    assert embedded == gesture_tflite
    # the app code is the labkit-nn sketch's, apart from its header comment
    nn_folder, _ = write_sketch(gesture_tflite, tmp_path / "nn", sketch="g", name="m", labels=LABELS, app="gesture")
    body = lambda p: p.read_text().split("*/", 1)[1]  # noqa: E731
    assert body(folder / "g.ino") == body(nn_folder / "g.ino")
    assert "Chirale_TensorFlowLite" in (folder / "g.ino").read_text()
    # the library and the version the adapter was written for, in the headers a student opens
    assert "Chirale_TensorFlowLite library (version 2.0.0" in cpp
    assert "version 2.0.0" in (folder / "m.h").read_text()


def test_emulated_serial_prints_floats_as_the_arduino_core_does(tmp_path):
    """Serial.print(x, digits) on the emulated board equals labkit's Python twin for every score an
    int8 softmax can print (k/256) and awkward values."""
    from labkit.deploy.sketch import arduino_float

    # the reason for the twin: on some exact ties (scores such as 48/256) the board and Python differ
    assert any(arduino_float(k / 256, 3) != f"{k / 256:.3f}" for k in range(256))
    assert arduino_float(1.999, 2) == "2.00" and arduino_float(-0.5, 0) == "-1" and arduino_float(7.0, 0) == "7"
    rng = np.random.default_rng(5)
    values = ([k / 256 for k in range(257)] + [float(np.float32(v)) for v in rng.normal(0, 3, 40)]
              + [1.999, 2.675, -0.0001, -2.5, 0.005, 1e9, 5e9, -5e9, float("nan"), float("inf"), 0.0])
    digits = [0, 1, 2, 3, 4]
    literals = ",\n    ".join("NAN" if v != v else ("INFINITY" if v == float("inf") else float(v).hex())
                              for v in values)
    sketch = tmp_path / "floats"
    sketch.mkdir()
    (sketch / "floats.ino").write_text(
        f"static const double VALUES[] = {{\n    {literals}\n}};\n"
        "void setup() {\n"
        "    Serial.begin(9600);\n"
        "    for (unsigned i = 0; i < sizeof(VALUES) / sizeof(VALUES[0]); i++) {\n"
        f"        for (int d = 0; d <= {digits[-1]}; d++) {{ Serial.print(VALUES[i], d); Serial.print(' '); }}\n"
        "        Serial.println();\n"
        "    }\n"
        "}\n"
        "void loop() { Serial.available(); }\n")
    lines = run_sketch_emulated(sketch, tmp_path / "emu")
    printed = [l.split() for l in lines if not l.startswith("#")]
    assert printed == [[arduino_float(v, d) for d in digits] for v in values]
