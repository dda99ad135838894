"""Hostile strings never become code: tensor names, model paths, labels and sketch names that try to
close a comment, splice a line, open a string or include a header reach the generated C, the
sketches, the TFLite Micro back end and the manifests only as inert text."""

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from tflite_edit import _load, _pack

from labkit import cli
from labkit.deploy.codegen import CModel, ccomment, cstring, generate_c
from labkit.deploy.sketch import write_sketch
from labkit.errors import LabkitError
from labkit.verify import require_tool, verify

EMU = Path(__file__).resolve().parents[1] / "labkit" / "runtime" / "arduino_emu"

# Strings that end or continue a comment, open a string, inject a directive, or are merely odd.
CORPUS = [
    "*/", "/*", "*/ int injected = 1; /*", "**//**", "/*/", "x */ #include <stdio.h> /*",
    "line\nbreak", "cr\rlf\r\n", "tab\there", "#include <stdio.h>", "\n#define int long\n",
    "back\\slash", "ends with a backslash \\", "splice \\\nint injected;", "??/", "ends with a trigraph ??/",
    "??= ??( ??) ??' ??< ??> ??! ??-", "???", '"quoted"', "'single'", '\\"', "%s%n%x",
    "naïve", "日本語の名前", "\u202eevil\u202c", "\u2028separator", "\x00nul", "\x1b[31mred", "\x7f",
    "x" * 10240, "//", "// comment", "\\\\", "a?\\?/b",
]


def _rename_tensors(tflite: bytes, name_of) -> bytes:
    """The model with each tensor ``i`` of the main graph renamed to ``name_of(i)`` (str or raw bytes)."""
    model = _load(tflite)
    for i, t in enumerate(model.subgraphs[0].tensors):
        new = name_of(i)
        t.name = new if isinstance(new, bytes) else new.encode("utf-8")
    return _pack(model)


def _gcc_e(path: Path, *flags: str) -> str:
    """The file as the compiler sees it after preprocessing: comments gone, includes expanded, line splices
    and trigraphs applied (-std=c99 turns trigraphs on)."""
    cc = require_tool("gcc")
    p = subprocess.run([cc, "-E", "-P", *flags, str(path)], capture_output=True, text=True, check=True)
    return p.stdout


def _payload(marker: Path) -> str:
    return (f'x */ #include <stdio.h>\n__attribute__((constructor)) static void f(void) '
            f'{{ FILE *p = fopen("{marker}", "w"); if (p) fclose(p); }} /*')


def test_the_corpus_compiles_as_inert_comments_and_exact_string_literals(tmp_path):
    """Each string in a /* */ comment, a // comment and a string literal of a C99 program built with
    -Wall -Wextra -Werror -pedantic: every statement after a comment still runs, and every literal
    holds exactly the string's UTF-8 bytes."""
    lines = ["#include <stdio.h>", "int main(void) {", "    int kept = 0;"]
    literals = [s for s in CORPUS if len(s) <= 255]  # labels, the strings that become literals, are at most 255
    for s in CORPUS:
        lines += [f"    /* {ccomment(s)} */ kept += 1;", f"    // {ccomment(s)}", "    kept += 1;"]
    for s in literals:
        lines += [f"    {{ static const char s[] = {cstring(s)}; printf(\"%u:\", (unsigned)(sizeof s - 1)); "
                  "fwrite(s, 1, sizeof s - 1, stdout); }"]
    lines += [f"    return kept == {2 * len(CORPUS)} ? 0 : 1;", "}"]
    src = tmp_path / "corpus.c"
    src.write_text("\n".join(lines) + "\n")
    exe = tmp_path / "corpus"
    subprocess.run([require_tool("gcc"), "-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", str(src), "-o", str(exe)],
                   check=True, capture_output=True)
    run = subprocess.run([str(exe)], capture_output=True)
    assert run.returncode == 0, "a statement after a comment was swallowed"
    want = b"".join(f"{len(s.encode())}:".encode() + s.encode() for s in literals)
    assert run.stdout == want
    for s in CORPUS:  # one readable line, whatever the name's length
        assert "\n" not in ccomment(s) and len(ccomment(s)) < 400


@pytest.fixture(scope="module")
def hostile(gesture_tflite, tmp_path_factory):
    """The gesture model with its input tensor named to plant a constructor that writes a marker file,
    and every other tensor named after a string of the corpus (one with invalid UTF-8)."""
    folder = tmp_path_factory.mktemp("hostile")
    marker = folder / "constructor_ran"
    names = [_payload(marker)] + CORPUS + [b"\xff\xfe*/ invalid utf-8"]
    model = _load(gesture_tflite)
    inputs = set(model.subgraphs[0].inputs)
    order = iter(names[1:] * 4)
    tflite = _rename_tensors(gesture_tflite, lambda i: names[0] if i in inputs else next(order))
    return tflite, marker


def test_the_payload_would_run_if_it_reached_the_code(hostile, tmp_path):
    """The control: the input tensor's name, pasted into a comment unescaped, runs its constructor."""
    tflite, marker = hostile
    name = _load(tflite).subgraphs[0].tensors[_load(tflite).subgraphs[0].inputs[0]].name.decode()
    src = tmp_path / "raw.c"
    src.write_text(f"/* {name} */\nint main(void) {{ return 0; }}\n")
    subprocess.run([require_tool("gcc"), str(src), "-o", str(tmp_path / "raw")], check=True, capture_output=True)
    subprocess.run([str(tmp_path / "raw")], check=True)
    assert marker.exists()
    marker.unlink()


def test_codegen_of_a_hostile_model_builds_the_same_code_as_the_clean_one(gesture_tflite, hostile, tmp_path):
    tflite, marker = hostile
    clean, evil = generate_c(gesture_tflite, tmp_path / "clean"), generate_c(tflite, tmp_path / "evil")
    assert [f.name for f in clean.files] == [f.name for f in evil.files]
    for f in evil.files:
        if f.suffix in (".c", ".h"):
            assert _gcc_e(f, "-std=c99", f"-I{f.parent}") == _gcc_e(tmp_path / "clean" / f.name, "-std=c99",
                                                                      f"-I{tmp_path / 'clean'}"), f.name
    text = (tmp_path / "evil" / "model.c").read_text()
    assert "__attribute__((constructor)) static" in text  # the names are there to read, as text
    assert not re.search(r"^\s*#\s*include\s*<stdio.h>", text, re.M)  # but never as a directive
    # the manifest holds no tensor name and reads back as the clean one's facts
    d_clean = json.loads((tmp_path / "clean" / "model.json").read_text())
    d_evil = json.loads((tmp_path / "evil" / "model.json").read_text())
    assert {k: v for k, v in d_evil.items() if k not in ("sha256", "generation")} == \
        {k: v for k, v in d_clean.items() if k not in ("sha256", "generation")}
    assert "constructor" not in (tmp_path / "evil" / "model.json").read_text()
    assert not marker.exists()


def test_verify_of_a_hostile_model_never_runs_its_constructor(hostile, tmp_path):
    tflite, marker = hostile
    path = tmp_path / "evil.tflite"
    path.write_bytes(tflite)
    report = verify(path, samples=20, workdir=tmp_path / "w")
    assert report.bit_exact
    assert not marker.exists()


def test_sketches_of_a_hostile_model_build_the_same_code_as_the_clean_ones(gesture_tflite, hostile, tmp_path):
    tflite, marker = hostile
    labels = ["punch", "flex", "wave", "circle"]
    for app in ("gesture", "serial"):
        clean, _ = write_sketch(gesture_tflite, tmp_path / "clean", sketch=app, labels=labels, app=app)
        evil, _ = write_sketch(tflite, tmp_path / "evil", sketch=app, labels=labels, app=app,
                               input_note=CORPUS[2] + CORPUS[13])
        cxx = ["-x", "c++", "-std=gnu++14", f"-I{EMU}", "-include", "Arduino.h"]
        assert _gcc_e(evil / f"{app}.ino", *cxx, f"-I{evil}") == _gcc_e(clean / f"{app}.ino", *cxx, f"-I{clean}")
        assert _gcc_e(evil / "model.c", "-std=c99", f"-I{evil}") == _gcc_e(clean / "model.c", "-std=c99", f"-I{clean}")
    # the TFLite Micro back end: its headers stubbed, the same code apart from the embedded model bytes
    stubs = tmp_path / "stubs"
    for h in ("Chirale_TensorFlowLite.h", "tensorflow/lite/micro/micro_interpreter.h",
              "tensorflow/lite/micro/micro_mutable_op_resolver.h", "tensorflow/lite/schema/schema_generated.h"):
        (stubs / h).parent.mkdir(parents=True, exist_ok=True)
        (stubs / h).write_text("")
    with pytest.warns(UserWarning):
        clean, _ = write_sketch(gesture_tflite, tmp_path / "clean_tflm", sketch="g", labels=labels, app="gesture", backend="tflm")
    with pytest.warns(UserWarning):
        evil, _ = write_sketch(tflite, tmp_path / "evil_tflm", sketch="g", labels=labels, app="gesture", backend="tflm")
    for name in ("model.h", "model.cpp", "model_data.h"):
        flags = ["-x", "c++", "-std=gnu++14", f"-I{stubs}"]
        assert _gcc_e(evil / name, *flags, f"-I{evil}") == _gcc_e(clean / name, *flags, f"-I{clean}"), name
    # model_data.cpp: the model's bytes, as they are (names included), in the same code around them
    data = _gcc_e(evil / "model_data.cpp", "-x", "c++", f"-I{evil}")
    assert bytes(int(h, 16) for h in re.findall(r"0x([0-9a-f]{2})", data)) == tflite
    strip = lambda text: re.sub(r"(0x[0-9a-f]{2},?\s*)+|(?<=_len = )\d+", "", text)  # noqa: E731
    assert strip(data) == strip(_gcc_e(clean / "model_data.cpp", "-x", "c++", f"-I{clean}"))
    assert not marker.exists()


def test_a_model_path_with_comment_closers_stays_out_of_the_code(gesture_tflite, tmp_path, capsys):
    """`labkit codegen` of a model whose path holds '*/' and '??/' (folders ending in '*' and '??') and
    whose file name holds a backslash, a newline and a directive: only the file name reaches the files, as inert text,
    and no absolute path of this machine does."""
    home = tmp_path / "my models *" / "trigraph ??"
    home.mkdir(parents=True)
    model = home / "pwn \\\n#include <stdio.h> *.tflite"
    model.write_bytes(gesture_tflite)
    assert "*/" in str(model) and "??/" in str(model)
    (tmp_path / "clean.tflite").write_bytes(gesture_tflite)
    assert cli.main(["codegen", str(model), "-o", str(tmp_path / "out")]) == 0
    assert cli.main(["codegen", str(tmp_path / "clean.tflite"), "-o", str(tmp_path / "ref")]) == 0
    for f in (tmp_path / "out").iterdir():
        data = f.read_bytes()
        assert str(tmp_path).encode() not in data and str(Path.home()).encode() + b"/" not in data, f.name
        if f.suffix in (".c", ".h"):
            assert _gcc_e(f, "-std=c99", f"-I{f.parent}") == _gcc_e(tmp_path / "ref" / f.name, "-std=c99", f"-I{tmp_path / 'ref'}")
    assert "#include <stdio.h> *.tflite" in (tmp_path / "out" / "model.h").read_text()  # named, inert
    capsys.readouterr()
    assert cli.main(["verify", str(tmp_path / "out"), "--samples", "5"]) == 0


def test_labels_reach_the_c_as_exact_string_literals(gesture_tflite, tmp_path):
    """Labels with quotes, comment closers, trigraphs, newlines, non-ASCII and 10 KB: the generated
    `model_labels` array, compiled and printed, gives back exactly those strings; the manifest too."""
    labels = ['say "hi" */', "back\\slash ??/", "naïve\n日本", "ü" * 255]
    cm = generate_c(gesture_tflite, tmp_path / "c", labels=labels)
    main = tmp_path / "print_labels.c"
    main.write_text('#include <stdio.h>\n#include "model.h"\n'
                    "int main(void) { for (int i = 0; i < MODEL_NUM_LABELS; ++i) printf(\"%s%c\", model_labels[i], 0); return 0; }\n")
    exe = tmp_path / "print_labels"
    subprocess.run([require_tool("gcc"), "-std=c99", "-Wall", "-Wextra", "-Werror", f"-I{cm.out_dir}", str(main),
                    *map(str, cm.sources), "-lm", "-o", str(exe)], check=True, capture_output=True)
    printed = subprocess.run([str(exe)], capture_output=True, check=True).stdout
    assert printed.split(b"\0")[:-1] == [l.encode() for l in labels]
    assert CModel.from_folder(tmp_path / "c").labels == labels


@pytest.mark.parametrize("labels,words", [(["a", "b", "", "d"], "label 3 of 4 is empty"),
                                          (["punch", "flex", "Punch", "wave"], "given twice"),
                                          (["a", "b", "c", "x" * 10240], "label 4 has 10,240 characters")])
def test_empty_and_duplicate_labels_are_refused(gesture_tflite, tmp_path, labels, words):
    with pytest.raises(LabkitError, match=words):
        generate_c(gesture_tflite, tmp_path / "c", labels=labels)
    assert not (tmp_path / "c").exists()


@pytest.mark.parametrize("bad", ["", "1x", "a-b", "x */", "x\n", "ä", "class", "int", "_Bool", "math", "Arduino",
                                 "labkit_nn", "__x", "_X", "x" * 49, "x" * 10240])
def test_a_bad_c_name_is_refused_with_the_rule(gesture_tflite, tmp_path, capsys, bad):
    model = tmp_path / "m.tflite"
    model.write_bytes(gesture_tflite)
    assert cli.main(["codegen", str(model), "-o", str(tmp_path / "out"), "--name", bad]) == 2
    err = capsys.readouterr().err
    assert err.startswith("labkit: error:") and "cannot name a C model" in err and "[A-Za-z_][A-Za-z0-9_]*" in err
    assert len(err) < 600 and err.count("\n") == 1  # one line, even for a 10 KB or multi-line name
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("good", ["x" * 48, "_x", "model2", "Gesture_Model"])
def test_good_c_names_build(gesture_tflite, tmp_path, good):
    cm = generate_c(gesture_tflite, tmp_path / "c", name=good)
    assert (tmp_path / "c" / f"{good}.c").is_file() and cm.name == good


@pytest.mark.parametrize("bad", ["", "-x", "../up", "a/b", "a b", "x */", "x" * 64, "CON", "nul.txt", "x.", "ä"])
def test_a_bad_sketch_name_is_refused_with_the_rule(gesture_tflite, tmp_path, capsys, bad):
    model = tmp_path / "m.tflite"
    model.write_bytes(gesture_tflite)
    (tmp_path / "out").mkdir()
    assert cli.main(["sketch", str(model), "-o", str(tmp_path / "out"), f"--sketch={bad}"]) == 2
    err = capsys.readouterr().err
    assert "cannot name an Arduino sketch" in err and "up to 63 letters, digits" in err and err.count("\n") == 1
    assert list((tmp_path / "out").iterdir()) == [] and sorted(p.name for p in tmp_path.iterdir()) == ["m.tflite", "out"]


def test_a_hostile_model_file_name_gives_a_valid_default_sketch_name(gesture_tflite, tmp_path, capsys):
    model = tmp_path / "my model ??= *.tflite"
    model.write_bytes(gesture_tflite)
    assert cli.main(["sketch", str(model), "-o", str(tmp_path / "out"), "--labels", "a,b,c,d"]) == 0
    (folder,) = (tmp_path / "out").iterdir()
    assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}", folder.name) and (folder / f"{folder.name}.ino").is_file()
    shutil.rmtree(tmp_path / "out")
