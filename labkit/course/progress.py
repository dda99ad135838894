"""Progress of a long cell: one line that follows the computation and is blank again when it ends.

A lesson cell that runs for more than about ten seconds should show that it is working (issue 17).
Keras's ``verbose=2`` would print a line per epoch with timings into the stored notebook, and
stored outputs must be the same on every machine (README, "Writing a lesson that passes on every
CPU"). So the line here is a Jupyter *display* with an id: it is created blank, updated in place
while the cell runs (``epoch 3/8  loss 0.412  12 s``), and set blank again at the end. What a stored
notebook keeps — and what nbval compares — is that blank display, identical on every machine;
nbval ignores the updates in between.

Outside a Jupyter kernel (a script, pytest) nothing is shown: scripts have their own ``verbose``.

- :class:`Progress` — ``with Progress(total, "image") as p: ... p.step()``;
- :func:`track` — ``for name in track(models, "model"): ...``;
- :func:`keras_epochs` — a Keras callback for ``fit(..., callbacks=[keras_epochs()])``.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from typing import Any

from labkit.errors import LabkitError

__all__ = ["Progress", "track", "keras_epochs", "in_kernel"]

#: What the line shows when nothing runs: blank, so that the stored output is the same everywhere.
BLANK = {"text/plain": ""}


def in_kernel() -> bool:
    """True inside a Jupyter kernel (where a display can be updated in place)."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython comes with Jupyter
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


class Progress:
    """One progress line: ``what`` counted up to ``total`` (``None``: unknown), with elapsed seconds.

    Use it as a context manager, so that the line is blanked even when the cell fails::

        with Progress(len(models), "model") as p:
            for m in models:
                ...
                p.step(f"{name}: {acc:.3f}")
    """

    def __init__(self, total: int | None = None, what: str = "step", every: float = 0.2):
        if total is not None and (isinstance(total, bool) or not isinstance(total, int) or total < 0):
            raise LabkitError(f"total must be a whole number >= 0 or None, got {total!r}")
        if not isinstance(what, str) or not what.strip():
            raise LabkitError(f"what must name the unit counted (e.g. 'epoch'), got {what!r}")
        self.total, self.what, self.every = total, what, float(every)
        self.done = 0
        self.text = ""  # the last line shown (kept for tests and for scripts that want to print it)
        self._start = time.monotonic()
        self._shown = float("-inf")  # the first step is always shown
        self._handle = None
        if in_kernel():
            from IPython.display import display

            self._handle = display(BLANK, raw=True, display_id=True)

    def line(self, note: str = "") -> str:
        """The text for ``done`` of ``total``: ``epoch 3/8  loss 0.41  12 s``."""
        count = f"{self.done}/{self.total}" if self.total is not None else f"{self.done}"
        seconds = time.monotonic() - self._start
        return f"{self.what} {count}" + (f"  {note}" if note else "") + f"  {seconds:.0f} s"

    def step(self, note: str = "", n: int = 1) -> None:
        """``n`` more done; redraw (at most every ``every`` seconds, and always at the last one)."""
        self.done += n
        now = time.monotonic()
        last = self.total is not None and self.done >= self.total
        if last or now - self._shown >= self.every:
            self._shown = now
            self.text = self.line(note)
            if self._handle is not None:
                self._handle.update({"text/plain": self.text}, raw=True)

    def close(self) -> None:
        """Blank the line: the stored notebook keeps no count and no time."""
        if self._handle is not None:
            self._handle.update(BLANK, raw=True)
            self._handle = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def track(items: Iterable, what: str = "step", total: int | None = None) -> Iterator:
    """Yield from ``items`` while a :class:`Progress` line counts them."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    with Progress(total, what) as p:
        for item in items:
            yield item
            p.step()


def keras_epochs(what: str = "epoch"):
    """A Keras callback: one :class:`Progress` line per ``fit``, counting epochs, with the loss
    (and the validation loss when there is one)."""
    from labkit.keras import keras

    class _EpochProgress(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.progress: Progress | None = None

        def on_train_begin(self, logs=None):
            self.progress = Progress(int(self.params.get("epochs") or 0) or None, what, every=0.0)

        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            note = "  ".join(f"{k} {v:.4g}" for k, v in logs.items() if k in ("loss", "val_loss", "accuracy"))
            self.progress.step(note)

        def on_train_end(self, logs=None):
            if self.progress is not None:
                self.progress.close()

    return _EpochProgress()
