"""The one container every data set in labkit comes in: plain numpy arrays plus metadata.

Lessons pass ``x`` and ``y`` straight to scikit-learn or Keras, so the container stays thin:
it only checks that the arrays belong together and knows how to split itself.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np

from labkit.errors import DatasetError

TASKS = ("classification", "regression")


@dataclass(frozen=True)
class DatasetInfo:
    """What the arrays mean: needed later to label plots and to write the C header."""

    name: str
    task: str
    class_names: tuple[str, ...] = ()
    feature_names: tuple[str, ...] = ()
    units: tuple[str, ...] = ()
    sample_rate_hz: float | None = None
    description: str = ""
    source: str = ""
    # The parameters that generated a synthetic set (e.g. slope, offset), so lessons can compare.
    truth: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise DatasetError(f"DatasetInfo.task must be one of {TASKS}, got {self.task!r}")
        # Accept lists from users, but store immutable values so an info can be shared safely.
        for name in ("class_names", "feature_names", "units"):
            object.__setattr__(self, name, tuple(str(v) for v in getattr(self, name)))
        if self.units and self.feature_names and len(self.units) != len(self.feature_names):
            raise DatasetError(
                f"DatasetInfo has {len(self.feature_names)} feature_names but {len(self.units)} units; "
                "give one unit per feature"
            )
        object.__setattr__(self, "truth", MappingProxyType(dict(self.truth)))


@dataclass
class Dataset:
    """Features ``x`` (first axis = samples), targets ``y`` and their :class:`DatasetInfo`.

    Unpacks like a tuple so lessons can write ``x, y, info = make_gestures()``.

    ``groups`` (optional) says who or what each sample came from, one integer per sample aligned
    with ``y`` — for gestures, the person who made it. It is what scikit-learn's group splitters
    take (``LeaveOneGroupOut().split(ds.x, ds.y, ds.groups)``); :func:`split_by_person` uses it.
    """

    x: np.ndarray
    y: np.ndarray
    info: DatasetInfo
    groups: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.x = np.asarray(self.x)
        self.y = np.asarray(self.y)
        if self.x.ndim == 0 or self.y.ndim != 1:
            raise DatasetError(
                f"{self.info.name}: x must have a sample axis and y must be 1-D, "
                f"got x shape {self.x.shape} and y shape {self.y.shape}"
            )
        if len(self.x) != len(self.y):
            raise DatasetError(
                f"{self.info.name}: x has {len(self.x)} samples but y has {len(self.y)}; "
                "they must have one target per sample"
            )
        if self.info.task == "classification":
            if len(self.y) and not np.issubdtype(self.y.dtype, np.integer):
                raise DatasetError(
                    f"{self.info.name}: classification targets must be integer class indices, "
                    f"got dtype {self.y.dtype}"
                )
            n_classes = len(self.info.class_names)
            if n_classes and len(self.y) and (self.y.min() < 0 or self.y.max() >= n_classes):
                raise DatasetError(
                    f"{self.info.name}: class indices must lie in 0..{n_classes - 1} "
                    f"(one per class name), got {self.y.min()}..{self.y.max()}"
                )
        if self.groups is not None:
            self.groups = np.asarray(self.groups)
            if self.groups.shape != self.y.shape or (len(self.groups) and not np.issubdtype(self.groups.dtype, np.integer)):
                raise DatasetError(
                    f"{self.info.name}: groups must be one integer per sample (shape {self.y.shape}), "
                    f"got shape {self.groups.shape} and dtype {self.groups.dtype}"
                )

    def __len__(self) -> int:
        return len(self.x)

    def __iter__(self) -> Iterator[Any]:
        return iter((self.x, self.y, self.info))

    def __repr__(self) -> str:
        # The default dataclass repr would print every array element in a notebook.
        groups = "" if self.groups is None else f", groups={len(np.unique(self.groups))}"
        return (
            f"Dataset(name={self.info.name!r}, task={self.info.task!r}, "
            f"x={self.x.shape} {self.x.dtype}, y={self.y.shape} {self.y.dtype}{groups})"
        )

    def split(
        self,
        test_size: float = 0.2,
        val_size: float = 0.0,
        seed: int = 0,
        stratify: bool = True,
    ) -> tuple[Dataset, ...]:
        """Return ``(train, test)``, or ``(train, val, test)`` when ``val_size > 0``.

        Sizes are fractions of the whole set. Classification sets are stratified by default so
        every split keeps the class balance, which small gesture sets otherwise lose.
        """
        from sklearn.model_selection import train_test_split

        if not 0 < test_size < 1 or not 0 <= val_size < 1 or test_size + val_size >= 1:
            raise DatasetError(
                f"split needs 0 < test_size < 1, 0 <= val_size < 1 and test_size + val_size < 1, "
                f"got test_size={test_size}, val_size={val_size}"
            )
        use_strata = stratify and self.info.task == "classification"

        def cut(idx: np.ndarray, size: float, rs: int) -> tuple[np.ndarray, np.ndarray]:
            try:
                return train_test_split(
                    idx, test_size=size, random_state=rs, stratify=self.y[idx] if use_strata else None
                )
            except ValueError as e:
                raise DatasetError(
                    f"{self.info.name}: cannot split {len(idx)} samples ({e}); "
                    "use more samples per class or stratify=False"
                ) from None

        rest, test = cut(np.arange(len(self)), test_size, seed)
        if val_size == 0:
            return self._take(rest), self._take(test)
        train, val = cut(rest, val_size / (1 - test_size), seed + 1)
        return self._take(train), self._take(val), self._take(test)

    def _take(self, idx: np.ndarray) -> Dataset:
        return Dataset(self.x[idx], self.y[idx], self.info, None if self.groups is None else self.groups[idx])

    def take(self, idx) -> Dataset:
        """The samples at ``idx`` (indices or a boolean mask), with their groups and the same info."""
        idx = np.asarray(idx)
        if idx.dtype == bool and idx.shape != self.y.shape:
            raise DatasetError(f"{self.info.name}: a boolean mask must have one entry per sample ({len(self)}), "
                               f"got shape {idx.shape}")
        if idx.dtype != bool and not np.issubdtype(idx.dtype, np.integer) and idx.size:
            raise DatasetError(f"{self.info.name}: take() needs integer indices or a boolean mask, got dtype {idx.dtype}")
        return self._take(idx)


def split_by_person(ds: Dataset, test_people) -> tuple[Dataset, Dataset]:
    """``(train, test)``: the samples of the people in ``test_people`` are the test set, everyone
    else's the training set — the honest test of a gesture model, which meets new people, not new
    repetitions of its trainers. Needs ``ds.groups`` (person per sample, as ``make_gestures`` gives).
    """
    if ds.groups is None:
        raise DatasetError(
            f"{ds.info.name} has no person per sample (Dataset.groups is None); make_gestures sets it, "
            "load_gestures(..., person=N) sets it for one student's recordings"
        )
    people = np.atleast_1d(np.asarray(test_people))
    if not people.size or not np.issubdtype(people.dtype, np.integer):
        raise DatasetError(f"test_people must be one or more integer person ids, got {test_people!r}")
    known = np.unique(ds.groups)
    missing = sorted(set(people.tolist()) - set(known.tolist()))
    if missing:
        raise DatasetError(f"test_people {missing} are not in {ds.info.name}; its people are {known.tolist()}")
    test = np.isin(ds.groups, people)
    if test.all():
        raise DatasetError(f"test_people {people.tolist()} are all the people in {ds.info.name}: nobody is left to train on")
    return ds._take(np.flatnonzero(~test)), ds._take(np.flatnonzero(test))


def concat_datasets(*parts: Dataset) -> Dataset:
    """One Dataset from several with the same classes and sample shape (e.g. each student's
    recordings loaded with its own ``person``); ``groups`` are kept when every part has them."""
    if not parts:
        raise DatasetError("concat_datasets needs at least one Dataset")
    first = parts[0]
    for k, d in enumerate(parts[1:], 1):
        if d.info.class_names != first.info.class_names or d.x.shape[1:] != first.x.shape[1:]:
            raise DatasetError(
                f"part {k} has classes {d.info.class_names} and samples of shape {d.x.shape[1:]}, part 0 "
                f"{first.info.class_names} and {first.x.shape[1:]}; they must match to be joined"
            )
    groups = None
    if all(d.groups is not None for d in parts):
        groups = np.concatenate([d.groups for d in parts])
    return Dataset(np.concatenate([d.x for d in parts]), np.concatenate([d.y for d in parts]), first.info, groups)
