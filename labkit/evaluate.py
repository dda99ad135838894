"""Leave-one-person-out evaluation: how well a model does on someone it never saw.

A random train/test split puts repetitions of the same people on both sides, so it measures how
well a model knows its trainers. What a deployed gesture model meets is a new person. Here every
person in turn is held out, a fresh model is trained on everyone else (optionally on augmented
copies) and scored on that person.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from labkit.datasets.augment import augment_dataset
from labkit.datasets.base import Dataset, split_by_person
from labkit.errors import DatasetError, LabkitError
from labkit.train import accuracy, fit_classifier, set_seed


def leave_one_person_out(
    build_model: Callable[[], Any],
    ds: Dataset,
    fit_kwargs: Mapping[str, Any] | None = None,
    augment: Mapping[str, Any] | Callable[[Dataset, int], Dataset] | None = None,
    transform: Callable[[np.ndarray], np.ndarray] | None = None,
    seed: int = 0,
    verbose: bool = True,
) -> tuple[pd.DataFrame, float]:
    """Train on all people but one, test on that one, for every person; ``(table, mean accuracy)``.

    ``build_model()`` returns a new (compiled or not) tf_keras classifier each time it is called;
    it is called once per person after seeding, so every fold starts from the same seed.
    ``ds.groups`` says whose each sample is (``make_gestures`` and ``load_gestures(person=)`` set it).
    ``fit_kwargs`` go to :func:`labkit.train.fit_classifier` (e.g. ``epochs``, ``batch_size``).
    ``augment``: a dict of :func:`labkit.datasets.augment.augment_dataset` options (e.g.
    ``{"copies": 4, "rotation_degrees": 180}``), or a function ``(train_ds, seed) -> Dataset``; it is
    applied to the training people only. ``transform`` maps raw windows to the model's input
    (e.g. :func:`labkit.datasets.normalize_imu`), after augmentation, for training and test alike.

    The table has one row per held-out person: ``person``, ``n`` (their samples) and ``accuracy``;
    the mean is over people (each counts once, however many samples they have). ``verbose`` prints
    one line per person as it finishes.
    """
    if not callable(build_model) or hasattr(build_model, "layers"):  # a model is callable too
        raise LabkitError(
            f"build_model must be a function that returns a new model (e.g. lambda: models.cnn1d((119, 6), 4)), "
            f"got {type(build_model).__name__}: every held-out person needs a freshly initialised model"
        )
    if not isinstance(ds, Dataset):
        raise DatasetError(f"leave_one_person_out needs a labkit Dataset, got {type(ds).__name__}")
    if ds.groups is None:
        raise DatasetError(
            f"{ds.info.name} has no person per sample (Dataset.groups is None): make_gestures sets it; for "
            "recordings load each student's folder with load_gestures(folder, person=k) and join them"
        )
    people = np.unique(ds.groups)
    if len(people) < 2:
        raise DatasetError(f"{ds.info.name} holds {len(people)} person; leaving one out needs at least 2")
    fit_kwargs = dict(fit_kwargs or {})
    fit_kwargs.setdefault("seed", seed)
    if augment is not None and not callable(augment) and not isinstance(augment, Mapping):
        raise DatasetError(f"augment must be a dict of augment_dataset options or a function, got {type(augment).__name__}")
    prep = transform if transform is not None else (lambda x: x)

    rows = []
    for k, person in enumerate(people):
        train, test = split_by_person(ds, [int(person)])
        if augment is not None:
            train = augment(train, seed + k) if callable(augment) else augment_dataset(train, seed=seed + k, **augment)
        set_seed(seed)  # the model's initial weights: the same for every fold
        model = build_model()
        fit_classifier(model, prep(train.x), train.y, **fit_kwargs)
        acc = accuracy(model, prep(test.x), test.y)
        rows.append({"person": int(person), "n": len(test), "accuracy": acc})
        if verbose:
            print(f"person {int(person)} held out ({k + 1}/{len(people)}): accuracy {acc:.3f} on {len(test)} samples",
                  flush=True)
    table = pd.DataFrame(rows, columns=["person", "n", "accuracy"])
    return table, float(table["accuracy"].mean())
