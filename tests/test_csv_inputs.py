"""Issue 12, capture CSVs: what real and broken recordings do to load_gestures / load_gesture_csv."""

import os
import re
import warnings

import numpy as np
import pytest

from labkit.datasets import (
    PartialGestureWarning,
    count_gestures,
    load_gesture_csv,
    load_gestures,
    make_gestures,
    write_gesture_csv,
)
from labkit.errors import DatasetError

HEADER = "aX,aY,aZ,gX,gY,gZ"


def rows(gesture) -> list[str]:
    return [",".join(f"{v:.3f}" for v in row) for row in gesture]


def gestures(n: int, seed: int = 0) -> np.ndarray:
    """Exact at 3 decimals, in g and deg/s like a real capture (rest ~1 g on aZ)."""
    x = make_gestures(n_per_class=n, classes=("punch",), seed=seed).x
    return np.round(x.astype(np.float64), 3).astype(np.float32)


def capture_text(x, tail: list[str] = ()) -> str:
    lines = [HEADER]
    for g in x:
        lines += rows(g) + [""]
    return "\n".join(lines + list(tail)) + "\n"


@pytest.mark.parametrize("value, channel, message", [
    ("1e39", 2, r"aZ = 1e\+39 is beyond the sensor's range \(±16 g\)"),
    ("-17.5", 0, r"aX = -17.5 is beyond the sensor's range \(±16 g\)"),
    ("2500", 4, r"gY = 2500 is beyond the sensor's range \(±2000 deg/s\)"),
])
def test_values_beyond_the_sensor_range_name_file_and_line(tmp_path, value, channel, message):
    x = gestures(2)
    lines = capture_text(x).split("\n")
    fields = lines[40].split(",")  # line 41: row 40 of the first gesture
    fields[channel] = value
    lines[40] = ",".join(fields)
    path = tmp_path / "punch.csv"
    path.write_text("\n".join(lines))
    with pytest.raises(DatasetError, match=re.escape(f"{path} line 41: ") + message):
        load_gesture_csv(path)


def test_a_recording_in_m_per_s2_is_named(tmp_path):
    """MPU6050-style logs in m/s², cut to 119-row blocks: at rest |a| is 9.8, not 1."""
    rng = np.random.default_rng(0)
    still = np.zeros((2, 119, 6))
    still[..., 2] = 9.81
    still += rng.normal(0, 0.05, still.shape)  # every value inside ±16, so only the units give it away
    path = tmp_path / "rest.csv"
    path.write_text(capture_text(np.round(still, 3)))
    with pytest.raises(DatasetError, match=r"rest\.csv: the accelerometer columns look like m/s², not g: the median "
                                           r"\|a\| is 9\.8\d .*divide aX, aY, aZ by 9\.80665"):
        load_gesture_csv(path)
    moving = tmp_path / "moving.csv"  # real gestures in m/s² go past 16 as well: the units are still what is named
    moving.write_text(capture_text(np.round(gestures(3).astype(np.float64) * ([9.80665] * 3 + [1] * 3), 3)))
    with pytest.raises(DatasetError, match=r"look like m/s², not g"):
        load_gesture_csv(moving)


def test_gestures_in_g_are_not_mistaken_for_m_per_s2(tmp_path):
    x = make_gestures(n_per_class=20, classes=("punch", "flex", "wave", "circle", "updown"), seed=3).x
    write_gesture_csv(tmp_path / "all.csv", x)
    assert load_gesture_csv(tmp_path / "all.csv").shape == (100, 119, 6)


def test_writing_refuses_what_reading_would(tmp_path):
    with pytest.raises(DatasetError, match=r"gesture 0 row 0: aX = 40 is beyond the sensor's range \(±16 g\)"):
        write_gesture_csv(tmp_path / "x.csv", np.full((1, 119, 6), 40.0))
    assert not (tmp_path / "x.csv").exists()


def test_a_cut_short_last_gesture_is_dropped_with_a_warning(tmp_path):
    x = gestures(3)
    path = tmp_path / "flex.csv"
    path.write_text(capture_text(x[:2]) + "\n".join(rows(x[2])[:50]) + "\n")  # the capture stopped mid-gesture
    with pytest.warns(PartialGestureWarning, match=re.escape(f"{path} lines 242-291: the last gesture has only 50 of "
                                                             "119 rows") + r".*kept the 2 whole gesture\(s\)"):
        got = load_gesture_csv(path)
    assert np.array_equal(got, x[:2])
    with pytest.raises(DatasetError, match=re.escape(f"{path} line 291: gesture ending at line 291 has 50 rows")):
        load_gesture_csv(path, strict=True)
    with pytest.raises(DatasetError, match="has 50 rows"):
        load_gestures(tmp_path, strict=True)
    with pytest.raises(DatasetError, match="has 50 rows"):
        count_gestures(path)  # what capture checks before appending: strict


def test_a_file_holding_only_a_cut_short_gesture(tmp_path):
    path = tmp_path / "wave.csv"
    path.write_text("\n".join([HEADER] + rows(gestures(1)[0])[:30]) + "\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # refused outright, not a warning and then an empty set
        with pytest.raises(DatasetError, match=r"line 31: gesture ending at line 31 has 30 rows.*file's only gesture"):
            load_gesture_csv(path)


def test_blank_line_runs_are_tolerated(tmp_path):
    """A public recording had a doubled blank line after every row; gestures then differ by longer runs."""
    x = gestures(3, seed=1)
    doubled = tmp_path / "doubled.csv"
    doubled.write_text(HEADER + "\n" + "".join(r + "\n\n\n" for g in x for r in rows(g)))
    assert np.array_equal(load_gesture_csv(doubled), x)
    separated = tmp_path / "separated.csv"
    separated.write_text(HEADER + "\n" + "".join("".join(r + "\n\n\n" for r in rows(g)) + "\n\n" for g in x))
    assert np.array_equal(load_gesture_csv(separated), x)
    runs = tmp_path / "runs.csv"  # the usual layout with several blank lines between gestures
    runs.write_text(HEADER + "\n\n\n" + "".join("\n".join(rows(g)) + "\n\n\n\n" for g in x))
    assert np.array_equal(load_gesture_csv(runs), x)


def test_labels_differing_only_in_case_are_refused(tmp_path):
    write_gesture_csv(tmp_path / "punch.csv", gestures(1))
    write_gesture_csv(tmp_path / "punch.CSV", gestures(1, seed=2))
    with pytest.raises(DatasetError, match=r"punch\.CSV and punch\.csv are two files for the same label|"
                                           r"punch\.csv and punch\.CSV are two files for the same label"):
        load_gestures(tmp_path)
    other = tmp_path / "other"
    other.mkdir()
    write_gesture_csv(other / "Punch.csv", gestures(1))
    with pytest.raises(DatasetError, match=r"the files given: punch\.csv and Punch\.csv are two files"):
        load_gestures([tmp_path / "punch.csv", other / "Punch.csv"])


def test_a_folder_or_dangling_link_named_csv_is_reported(tmp_path):
    write_gesture_csv(tmp_path / "punch.csv", gestures(1))
    (tmp_path / "flex.csv").mkdir()
    with pytest.raises(DatasetError, match=re.escape(f"{tmp_path / 'flex.csv'} is a folder, not a capture file")):
        load_gestures(tmp_path)
    os.rmdir(tmp_path / "flex.csv")
    os.symlink(tmp_path / "gone.csv", tmp_path / "flex.csv")
    with pytest.raises(DatasetError, match=re.escape(f"flex.csv is a link to {tmp_path / 'gone.csv'}, which does not "
                                                     "exist")):
        load_gestures(tmp_path)
    assert load_gestures(tmp_path, classes=("punch",)).info.class_names == ("punch",)  # not asked for: not in the way


def test_count_gestures_takes_missing_and_header_only_files(tmp_path):
    assert count_gestures(tmp_path / "none.csv") == 0
    (tmp_path / "h.csv").write_text(HEADER + "\n")
    assert count_gestures(tmp_path / "h.csv") == 0
    write_gesture_csv(tmp_path / "g.csv", gestures(2))
    assert count_gestures(tmp_path / "g.csv") == 2
