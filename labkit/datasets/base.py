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
    """

    x: np.ndarray
    y: np.ndarray
    info: DatasetInfo

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

    def __len__(self) -> int:
        return len(self.x)

    def __iter__(self) -> Iterator[Any]:
        return iter((self.x, self.y, self.info))

    def __repr__(self) -> str:
        # The default dataclass repr would print every array element in a notebook.
        return (
            f"Dataset(name={self.info.name!r}, task={self.info.task!r}, "
            f"x={self.x.shape} {self.x.dtype}, y={self.y.shape} {self.y.dtype})"
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
        return Dataset(self.x[idx], self.y[idx], self.info)
