"""Tests for labkit.datasets: the synthetic gestures, the capture CSV format and the toy sets."""

from __future__ import annotations

import re
import time
from dataclasses import FrozenInstanceError

import numpy as np
import pytest

from labkit.datasets import (
    CHANNELS,
    SAMPLES_PER_GESTURE,
    UNITS,
    Dataset,
    DatasetInfo,
    load_gesture_csv,
    load_gestures,
    make_gestures,
    moons,
    noisy_line,
    noisy_sine,
    spiral,
    trigger_index,
    write_gesture_csv,
)
from labkit.errors import DatasetError

ALL_CLASSES = ("punch", "flex", "wave", "circle", "updown")
HEADER = "aX,aY,aZ,gX,gY,gZ"


@pytest.fixture(scope="module")
def gestures() -> Dataset:
    return make_gestures(n_per_class=40, classes=ALL_CLASSES, seed=0)


def rows(gesture: np.ndarray) -> list[str]:
    return [",".join(f"{v:.3f}" for v in row) for row in gesture]


def random_gestures(n: int, seed: int = 0) -> np.ndarray:
    """Values that are exact at 3 decimals, so a round trip can be compared exactly."""
    rng = np.random.default_rng(seed)
    return (rng.integers(-4000, 4000, size=(n, SAMPLES_PER_GESTURE, 6)) / 1000).astype(np.float32)


# --- make_gestures ---------------------------------------------------------------------------


def test_gestures_shapes_dtypes_and_metadata(gestures: Dataset) -> None:
    x, y, info = gestures
    assert x.shape == (40 * 5, 119, 6) and x.dtype == np.float32
    assert y.shape == (200,) and y.dtype == np.int64
    assert info.class_names == ALL_CLASSES
    assert info.feature_names == ("aX", "aY", "aZ", "gX", "gY", "gZ") == CHANNELS
    assert info.units == ("g", "g", "g", "deg/s", "deg/s", "deg/s") == UNITS
    assert info.sample_rate_hz == 119
    assert info.task == "classification"
    assert "seed=0" in info.source


def test_default_classes_are_the_first_four() -> None:
    assert make_gestures(n_per_class=2).info.class_names == ("punch", "flex", "wave", "circle")


def test_classes_are_balanced_and_shuffled(gestures: Dataset) -> None:
    assert np.bincount(gestures.y).tolist() == [40] * 5
    # Shuffled: the last 20% (Keras' validation_split) must not be a single class.
    assert len(set(gestures.y[-40:].tolist())) > 1


def test_values_stay_within_the_sensor_range(gestures: Dataset) -> None:
    accel, gyro = gestures.x[..., :3], gestures.x[..., 3:]
    assert np.abs(accel).max() <= 4.0
    assert np.abs(gyro).max() <= 2000.0
    # Hard punches saturate the +-4 g accelerometer as on the real board.
    assert np.isclose(np.abs(accel).max(), 4.0)


def test_every_window_starts_at_the_trigger(gestures: Dataset) -> None:
    first = np.abs(gestures.x[:, 0, :3]).sum(axis=1)
    assert (first >= 2.5).all()
    assert all(trigger_index(w) == 0 for w in gestures.x)


def test_gravity_and_rest_after_a_short_gesture() -> None:
    # A punch lasts well under a second, so the window ends with the board held still:
    # the accelerometer then reads 1 g of gravity and the gyroscope only noise.
    x = make_gestures(n_per_class=30, classes=("punch",), seed=1).x
    tail = x[:, -10:]
    assert np.allclose(np.linalg.norm(tail[..., :3], axis=-1).mean(axis=1), 1.0, atol=0.05)
    assert np.abs(tail[..., 3:]).mean() < 5.0


def test_gyro_follows_each_gestures_rotation_axis() -> None:
    # The simple model only: its board lies near flat with X along the forearm, so each gesture's axis
    # is one board axis. Calibrated people turn the board in the hand (tests/test_gestures_realism.py).
    x, y, info = make_gestures(n_per_class=40, classes=ALL_CLASSES, seed=0, calibrated=False)
    mean_abs = {c: np.abs(x[y == k, :, 3:]).mean(axis=(0, 1)) for k, c in enumerate(info.class_names)}
    assert mean_abs["flex"].argmax() == 1  # the curl pitches about the elbow: gY
    assert mean_abs["wave"].argmax() == 0  # the waving wrist rolls: gX


def test_noise_scale() -> None:
    quiet = make_gestures(n_per_class=10, classes=("punch",), noise=0.0, seed=2).x[:, -10:]
    noisy = make_gestures(n_per_class=10, classes=("punch",), noise=1.0, seed=2).x[:, -10:]
    assert quiet.std(axis=1).max() < 1e-3
    accel_std, gyro_std = noisy[..., :3].std(axis=1).mean(), noisy[..., 3:].std(axis=1).mean()
    assert 0.01 < accel_std < 0.04
    assert 1.0 < gyro_std < 4.0


def test_same_seed_same_data_other_seed_other_data() -> None:
    a = make_gestures(n_per_class=5, seed=7)
    b = make_gestures(n_per_class=5, seed=7)
    c = make_gestures(n_per_class=5, seed=8)
    assert np.array_equal(a.x, b.x) and np.array_equal(a.y, b.y)
    assert not np.allclose(a.x, c.x)


def test_people_differ_more_than_repetitions_of_one_person() -> None:
    # With n_people=1 each seed is one person. For tilt, speed and amplitude, the spread of the
    # persons' means must be far larger than one person's repetitions alone explain.
    n = 40
    means: dict[str, list[float]] = {"tilt": [], "speed": [], "amplitude": []}
    errors: dict[str, list[float]] = {k: [] for k in means}
    for seed in range(6):
        x, y, _ = make_gestures(n_per_class=n, classes=("punch", "flex"), n_people=1, seed=seed)
        punch, flex = x[y == 0], x[y == 1]
        rate = np.linalg.norm(punch[..., 3:], axis=-1)
        per_gesture = {
            "tilt": punch[:, -10:, 0].mean(axis=1),  # the board's tilt in the hand puts gravity on aX
            "speed": np.array([np.flatnonzero(r > 20).max() for r in rate]),  # samples until still
            "amplitude": np.linalg.norm(flex[..., 3:], axis=-1).sum(axis=1),  # how far the arm curls
        }
        for key, values in per_gesture.items():
            means[key].append(values.mean())
            errors[key].append(values.std() / np.sqrt(n))
    for key in means:
        assert np.std(means[key]) > 3 * np.mean(errors[key]), key


def test_unknown_class_is_rejected() -> None:
    with pytest.raises(DatasetError, match="kick"):
        make_gestures(n_per_class=2, classes=("punch", "kick"))


def test_make_gestures_is_fast() -> None:
    start = time.process_time()
    make_gestures(n_per_class=250)
    assert time.process_time() - start < 1.0


def test_trigger_index() -> None:
    window = np.zeros((5, 6))
    window[:, 2] = [1.0, 2.0, -1.5, 3.0, 0.0]
    window[2, 0] = 1.0  # |1| + |-1.5| = 2.5: exactly at the threshold counts
    assert trigger_index(window) == 2
    assert trigger_index(window, threshold=2.9) == 3
    assert trigger_index(window, threshold=10.0) == -1


# --- CSV writing and reading -----------------------------------------------------------------


def test_written_file_looks_like_the_capture_sketch_output(tmp_path) -> None:
    x = np.full((2, 119, 6), 1.23456, dtype=np.float32)
    x[1] = -0.5
    path = tmp_path / "punch.csv"
    write_gesture_csv(path, x)
    lines = path.read_text().split("\n")
    assert lines[0] == HEADER
    assert lines[1:120] == ["1.235,1.235,1.235,1.235,1.235,1.235"] * 119
    assert lines[120] == ""
    assert lines[121:240] == ["-0.500,-0.500,-0.500,-0.500,-0.500,-0.500"] * 119
    assert lines[240:] == ["", ""]  # blank line after the last gesture, then end of file


def test_csv_round_trip(tmp_path, gestures: Dataset) -> None:
    path = tmp_path / "g.csv"
    write_gesture_csv(path, gestures.x[:7])
    back = load_gesture_csv(path)
    assert back.dtype == np.float32 and back.shape == (7, 119, 6)
    assert np.allclose(back, gestures.x[:7], atol=0.0005 + 1e-6)


def test_single_gesture_can_be_written(tmp_path) -> None:
    x = random_gestures(1)
    write_gesture_csv(tmp_path / "one.csv", x[0])
    assert np.array_equal(load_gesture_csv(tmp_path / "one.csv"), x)


def test_append_adds_gestures_after_the_existing_ones(tmp_path) -> None:
    path = tmp_path / "flex.csv"
    first, more = random_gestures(2, seed=1), random_gestures(3, seed=2)
    write_gesture_csv(path, first)
    write_gesture_csv(path, more, append=True)
    assert np.array_equal(load_gesture_csv(path), np.concatenate([first, more]))
    assert path.read_text().count(HEADER) == 1


def test_append_refuses_to_extend_a_broken_file(tmp_path) -> None:
    path = tmp_path / "flex.csv"
    path.write_text(HEADER + "\n1,2,3\n")
    with pytest.raises(DatasetError, match="line 2"):
        write_gesture_csv(path, random_gestures(1), append=True)
    assert path.read_text() == HEADER + "\n1,2,3\n"


@pytest.mark.parametrize(
    "bad, problem",
    [(np.zeros((2, 100, 6)), "shape"), (np.full((1, 119, 6), np.nan), "NaN")],
)
def test_write_rejects_bad_arrays(tmp_path, bad, problem) -> None:
    with pytest.raises(DatasetError, match=problem):
        write_gesture_csv(tmp_path / "x.csv", bad)
    assert not (tmp_path / "x.csv").exists()


def test_header_repeated_crlf_trailing_space_and_bom_load(tmp_path) -> None:
    x = random_gestures(3)
    lines = []
    for gesture in x:
        lines += [HEADER] + [r + "  " for r in rows(gesture)] + [""]
    lines += [HEADER, "", ""]  # an empty trailing block
    path = tmp_path / "wave.csv"
    path.write_bytes(("\ufeff" + "\r\n".join(lines)).encode("utf-8"))
    assert np.array_equal(load_gesture_csv(path), x)


def test_file_without_blank_lines_is_split_every_119_rows(tmp_path) -> None:
    x = random_gestures(3, seed=4)
    path = tmp_path / "circle.csv"
    path.write_text("\n".join([HEADER] + [r for g in x for r in rows(g)]) + "\n")
    assert np.array_equal(load_gesture_csv(path), x)


def broken_capture(path, line: int | None = None, text: str | None = None, drop: range | None = None):
    """Header on line 1, gestures on lines 2-120 and 122-240, blank lines 121 and 241."""
    lines = [HEADER] + rows(random_gestures(1, 1)[0]) + [""] + rows(random_gestures(1, 2)[0]) + [""]
    if line is not None:
        lines[line - 1] = text
    if drop is not None:
        lines = [v for i, v in enumerate(lines, 1) if i not in drop]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize(
    "line, text, expected",
    [
        (125, "1.0,2.0,3.0,4.0,5.0", "expected 6 comma-separated numbers (aX,aY,aZ,gX,gY,gZ), got 5"),
        (30, "1,2,3,4,5,6,7", "got 7"),
        (200, "0.1,abc,0.3,4,5,6", "value 'abc' is not a number"),
        (2, "0.1,0.2,nan,4,5,6", "not a finite number"),
        (99, "0.1,0.2,0.3,inf,5,6", "not a finite number"),
        (1, "time,x,y,z,a,b", "value 'time' is not a number"),
    ],
)
def test_broken_line_names_file_line_and_format(tmp_path, line, text, expected) -> None:
    path = broken_capture(tmp_path / "punch.csv", line, text)
    with pytest.raises(DatasetError) as err:
        load_gesture_csv(path)
    message = str(err.value)
    assert "punch.csv" in message
    assert f"line {line}:" in message
    assert expected in message
    assert "header line aX,aY,aZ,gX,gY,gZ" in message  # says what the format should be


def test_short_gesture_names_where_it_ends(tmp_path) -> None:
    # Drop 39 rows of the first gesture: it then has 80 rows, ending on line 81, and a whole one
    # follows (a short *last* gesture is a capture cut short: tests/test_csv_inputs.py).
    path = broken_capture(tmp_path / "punch.csv", drop=range(30, 69))
    with pytest.raises(DatasetError) as err:
        load_gesture_csv(path)
    message = str(err.value)
    assert "punch.csv line 81" in message
    assert "gesture ending at line 81 has 80 rows" in message
    assert "exactly 119 rows" in message


def test_rows_without_blank_lines_must_be_whole_gestures(tmp_path) -> None:
    path = tmp_path / "updown.csv"
    body = [r for g in random_gestures(2) for r in rows(g)][:-5]  # 233 rows
    path.write_text("\n".join([HEADER] + body) + "\n")
    with pytest.raises(DatasetError, match=r"updown\.csv line 234: the 233 rows from line 2 to line 234"):
        load_gesture_csv(path)


@pytest.mark.parametrize("content, expected", [("", "is empty"), ("  \r\n\n", "is empty"), (HEADER + "\n\n", "no gestures")])
def test_empty_files(tmp_path, content, expected) -> None:
    path = tmp_path / "flex.csv"
    path.write_text(content)
    with pytest.raises(DatasetError, match=expected) as err:
        load_gesture_csv(path)
    assert "flex.csv" in str(err.value)


def test_missing_file_and_label_in_message(tmp_path) -> None:
    with pytest.raises(DatasetError, match="nothere.csv"):
        load_gesture_csv(tmp_path / "nothere.csv")
    path = broken_capture(tmp_path / "wave.csv", 5, "1,2")
    with pytest.raises(DatasetError, match="label 'wave'"):
        load_gesture_csv(path, label="wave")


# --- load_gestures ---------------------------------------------------------------------------


@pytest.fixture()
def capture_folder(tmp_path):
    data = {"punch": random_gestures(3, 1), "flex": random_gestures(2, 2), "wave": random_gestures(4, 3)}
    for label, x in data.items():
        write_gesture_csv(tmp_path / f"{label}.csv", x)
    (tmp_path / "notes.txt").write_text("not a capture")
    return tmp_path, data


def test_load_folder_sorts_classes_by_name(capture_folder) -> None:
    folder, data = capture_folder
    x, y, info = load_gestures(folder)
    assert info.class_names == ("flex", "punch", "wave")
    assert np.bincount(y).tolist() == [2, 3, 4]
    assert np.array_equal(x[y == 1], data["punch"])
    assert x.dtype == np.float32 and y.dtype == np.int64
    assert info.feature_names == CHANNELS and info.sample_rate_hz == 119
    for label in data:
        assert str(folder / f"{label}.csv") in info.source


def test_load_folder_with_classes_sets_order_and_subset(capture_folder) -> None:
    folder, data = capture_folder
    x, y, info = load_gestures(folder, classes=("wave", "punch"))
    assert info.class_names == ("wave", "punch")
    assert np.array_equal(x[y == 0], data["wave"]) and np.array_equal(x[y == 1], data["punch"])
    with pytest.raises(DatasetError, match=r"circle"):
        load_gestures(folder, classes=("wave", "circle"))


def test_load_explicit_files(capture_folder) -> None:
    folder, data = capture_folder
    ds = load_gestures([folder / "wave.csv", folder / "flex.csv"])
    assert ds.info.class_names == ("flex", "wave")
    assert np.bincount(ds.y).tolist() == [2, 4]


def test_empty_folder_says_what_it_expects(tmp_path) -> None:
    (tmp_path / "readme.md").write_text("x")
    with pytest.raises(DatasetError) as err:
        load_gestures(tmp_path)
    assert str(tmp_path) in str(err.value) and "one CSV per label" in str(err.value)


def test_broken_file_in_folder_is_named(capture_folder) -> None:
    folder, _ = capture_folder
    broken_capture(folder / "circle.csv", 7, "1,2,3,4,5,x")
    with pytest.raises(DatasetError, match=re.escape("circle.csv (label 'circle') line 7:")):
        load_gestures(folder)


# --- Dataset ---------------------------------------------------------------------------------


def classification(counts: list[int]) -> Dataset:
    y = np.repeat(np.arange(len(counts)), counts).astype(np.int64)
    names = tuple(f"c{k}" for k in range(len(counts)))
    return Dataset(np.arange(len(y), dtype=np.float32)[:, None], y, DatasetInfo("t", "classification", names))


def test_dataset_unpacks_and_has_len() -> None:
    ds = classification([3, 2])
    x, y, info = ds
    assert x is ds.x and y is ds.y and info is ds.info
    assert len(ds) == 5


def test_dataset_rejects_mismatched_lengths_and_bad_labels() -> None:
    info = DatasetInfo("t", "classification", ("a", "b"))
    with pytest.raises(DatasetError, match="x has 3 samples but y has 2"):
        Dataset(np.zeros((3, 2)), np.zeros(2, dtype=np.int64), info)
    with pytest.raises(DatasetError, match="0..1"):
        Dataset(np.zeros((2, 2)), np.array([0, 2]), info)
    with pytest.raises(DatasetError, match="task"):
        DatasetInfo("t", "clustering")


def test_info_is_immutable() -> None:
    info = DatasetInfo("t", "regression", truth={"slope": 2.0})
    with pytest.raises(FrozenInstanceError):
        info.name = "u"
    with pytest.raises(TypeError):
        info.truth["slope"] = 3.0


def test_split_is_stratified_and_disjoint() -> None:
    ds = classification([60, 30, 10])
    train, test = ds.split(test_size=0.2, seed=3)
    assert np.bincount(test.y).tolist() == [12, 6, 2]
    assert np.bincount(train.y).tolist() == [48, 24, 8]
    train, val, test = ds.split(test_size=0.2, val_size=0.2, seed=3)
    assert np.bincount(val.y).tolist() == [12, 6, 2] == np.bincount(test.y).tolist()
    ids = np.concatenate([train.x[:, 0], val.x[:, 0], test.x[:, 0]])
    assert sorted(ids.tolist()) == list(range(100))
    assert train.info is ds.info


def test_split_is_seeded_and_works_for_regression() -> None:
    ds = noisy_line(n=50)
    a, b = ds.split(seed=1), ds.split(seed=1)
    assert np.array_equal(a[1].x, b[1].x)
    assert not np.array_equal(a[1].x, ds.split(seed=2)[1].x)
    with pytest.raises(DatasetError, match="test_size"):
        ds.split(test_size=0.6, val_size=0.5)


# --- toy sets --------------------------------------------------------------------------------


def test_noisy_line_recovers_its_truth() -> None:
    x, y, info = noisy_line(n=500, slope=-3.0, offset=4.0, noise=1.0, seed=0)
    assert x.shape == (500, 1) and x.dtype == np.float32 and y.shape == (500,) and y.dtype == np.float32
    assert 0 <= x.min() and x.max() <= 10
    slope, offset = np.polyfit(x[:, 0], y, 1)
    assert abs(slope + 3.0) < 0.1 and abs(offset - 4.0) < 0.5
    assert dict(info.truth) == {"slope": -3.0, "offset": 4.0, "noise": 1.0}
    assert info.task == "regression"


def test_noisy_line_without_noise_is_exact() -> None:
    x, y, _ = noisy_line(n=20, noise=0.0, x_range=(-1, 1))
    assert np.allclose(y, 2.0 * x[:, 0] + 1.0, atol=1e-6)
    assert -1 <= x.min() and x.max() <= 1


def test_noisy_sine() -> None:
    x, y, info = noisy_sine(n=200, freq=2.0, noise=0.0, seed=5)
    assert x.shape == (200, 1) and 0 <= x.min() and x.max() <= 2 * np.pi
    assert np.allclose(y, np.sin(2.0 * x[:, 0]), atol=1e-6)
    assert info.truth["freq"] == 2.0
    noisy = noisy_sine(n=2000, noise=0.1, seed=5)
    assert 0.08 < np.std(noisy.y - np.sin(noisy.x[:, 0])) < 0.12


def test_moons() -> None:
    x, y, info = moons(n=200, noise=0.1, seed=1)
    assert x.shape == (200, 2) and x.dtype == np.float32 and y.dtype == np.int64
    assert np.bincount(y).tolist() == [100, 100]
    assert info.class_names == ("upper", "lower")
    assert x[y == 0, 1].mean() > x[y == 1, 1].mean()


def test_spiral() -> None:
    x, y, info = spiral(n_per_class=50, n_classes=4, seed=2)
    assert x.shape == (200, 2) and x.dtype == np.float32 and y.dtype == np.int64
    assert np.bincount(y).tolist() == [50] * 4
    assert len(info.class_names) == 4
    assert np.linalg.norm(x, axis=1).max() <= 1.0 + 1e-6


@pytest.mark.parametrize(
    "make", [lambda s: noisy_line(seed=s), lambda s: noisy_sine(seed=s), lambda s: moons(seed=s), lambda s: spiral(seed=s)]
)
def test_toy_sets_are_seeded(make) -> None:
    assert np.array_equal(make(0).x, make(0).x) and np.array_equal(make(0).y, make(0).y)
    assert not np.array_equal(make(0).x, make(1).x)
