"""Issue 16: leave-one-person-out evaluation (labkit.evaluate) and what augmentation does to it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from labkit import models
from labkit.datasets import Dataset, make_gestures, normalize_imu
from labkit.errors import DatasetError, LabkitError
from labkit.evaluate import leave_one_person_out


def test_one_row_per_person_with_accuracies_in_range(capsys) -> None:
    ds = make_gestures(n_per_class=12, classes=("punch", "flex"), n_people=3, seed=1, calibrated=True)
    build = lambda: models.mlp((119, 6), 2, hidden=(4,))  # noqa: E731
    table, mean = leave_one_person_out(build, ds, {"epochs": 2}, transform=normalize_imu)
    assert isinstance(table, pd.DataFrame) and list(table.columns) == ["person", "n", "accuracy"]
    assert table["person"].tolist() == [0, 1, 2]
    assert table["n"].tolist() == [int((ds.groups == p).sum()) for p in range(3)]
    assert table["accuracy"].between(0, 1).all()
    assert mean == pytest.approx(table["accuracy"].mean())
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3 and lines[0].startswith("person 0 held out (1/3): accuracy")
    # repeatable: every fold is seeded
    again, _ = leave_one_person_out(build, ds, {"epochs": 2}, transform=normalize_imu, verbose=False)
    assert again["accuracy"].tolist() == table["accuracy"].tolist()
    # a custom augmentation function sees only the training people
    seen = []
    leave_one_person_out(build, ds, {"epochs": 1}, augment=lambda d, s: seen.append(set(np.unique(d.groups))) or d,
                         transform=normalize_imu, verbose=False)
    assert seen == [{1, 2}, {0, 2}, {0, 1}]


def test_augmented_copies_raise_accuracy_on_people_never_seen() -> None:
    # The calibrated people hold the board in their own way, so a model trained on the others
    # does poorly on a new person. Training on 3 augmented copies per window (random rotation,
    # warp, amplitude, shift, noise) for the same epochs raises leave-one-person-out accuracy;
    # measured on 4 seeds (5 people, 40 per class, a small 1-D CNN, 12 epochs): 0.23-0.31 without,
    # 0.41-0.55 with (chance 0.25). NOTE what this does not show: the copies also mean 4x the
    # gradient steps. With the steps made equal (48 epochs on the originals) the rotation's own
    # gain is not reliable (benchmarks/capstone_data.py prints that comparison).
    ds = make_gestures(n_per_class=40, n_people=5, seed=0, calibrated=True)
    build = lambda: models.cnn1d((119, 6), 4, filters=(8, 16))  # noqa: E731
    fit = {"epochs": 12}
    _, plain = leave_one_person_out(build, ds, fit, transform=normalize_imu, verbose=False)
    _, augmented = leave_one_person_out(build, ds, fit, augment={"copies": 3}, transform=normalize_imu, verbose=False)
    assert augmented >= plain + 0.1, (plain, augmented)


def test_bad_inputs_are_refused() -> None:
    ds = make_gestures(n_per_class=4, classes=("punch", "flex"), n_people=2, seed=0)
    build = lambda: models.mlp((119, 6), 2, hidden=(4,))  # noqa: E731
    with pytest.raises(DatasetError, match="no person per sample"):
        leave_one_person_out(build, Dataset(ds.x, ds.y, ds.info))
    with pytest.raises(DatasetError, match="leaving one out needs at least 2"):
        leave_one_person_out(build, Dataset(ds.x, ds.y, ds.info, np.zeros(len(ds), dtype=np.int64)))
    with pytest.raises(LabkitError, match="build_model must be a function"):
        leave_one_person_out(models.mlp((119, 6), 2), ds)
    with pytest.raises(DatasetError, match="augment must be a dict"):
        leave_one_person_out(build, ds, augment=3)
