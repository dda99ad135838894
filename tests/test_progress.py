"""labkit.course.progress: a progress line that is shown while a cell runs and stored blank."""

from __future__ import annotations

import numpy as np
import pytest

from labkit.course import progress
from labkit.errors import LabkitError


class FakeHandle:
    def __init__(self, shown):
        self.shown = shown

    def update(self, data, raw=False):
        assert raw
        self.shown.append(dict(data))


@pytest.fixture
def kernel(monkeypatch):
    """Pretend to be in a Jupyter kernel; return the list of what the display showed, in order."""
    shown = []

    def display(data, raw=False, display_id=False):
        assert raw and display_id
        shown.append(dict(data))
        return FakeHandle(shown)

    import IPython.display

    monkeypatch.setattr(progress, "in_kernel", lambda: True)
    monkeypatch.setattr(IPython.display, "display", display)
    return shown


def test_in_a_kernel_the_line_counts_and_ends_blank(kernel):
    with progress.Progress(3, "image", every=0.0) as p:
        for k in range(3):
            p.step(f"done {k}")
    texts = [d["text/plain"] for d in kernel]
    assert texts[0] == "" and texts[-1] == ""  # created blank, left blank: the stored output is the same everywhere
    assert texts[1].startswith("image 1/3  done 0  ") and texts[1].endswith(" s")
    assert texts[3].startswith("image 3/3  done 2")
    assert p.done == 3


def test_blank_at_the_end_even_when_the_cell_fails(kernel):
    with pytest.raises(RuntimeError):
        with progress.Progress(10, "step", every=0.0) as p:
            p.step()
            raise RuntimeError("boom")
    assert kernel[-1] == progress.BLANK


def test_redraws_are_rate_limited_but_the_last_is_always_shown(kernel):
    with progress.Progress(1000, "step", every=3600) as p:
        for _ in range(1000):
            p.step()
    texts = [d["text/plain"] for d in kernel]
    # the blank start, the first step (nothing shown yet), the last step, the blank end
    assert len(texts) == 4 and texts[2].startswith("step 1000/1000")


def test_outside_a_kernel_nothing_is_displayed(capsys):
    assert not progress.in_kernel()
    with progress.Progress(2, "epoch", every=0.0) as p:
        p.step("loss 1")
        p.step("loss 0.5")
    assert p.text.startswith("epoch 2/2  loss 0.5")
    assert capsys.readouterr() == ("", "")


def test_unknown_total_counts_without_a_denominator():
    p = progress.Progress(None, "batch", every=0.0)
    p.step()
    p.step()
    assert p.text.startswith("batch 2  ")


@pytest.mark.parametrize("total, what", [(-1, "step"), (2.5, "step"), (True, "step"), (3, ""), (3, None)])
def test_bad_arguments_are_refused(total, what):
    with pytest.raises(LabkitError):
        progress.Progress(total, what)


def test_track_yields_everything_and_counts(kernel):
    items = ["a", "b", "c"]
    assert list(progress.track(items, "model")) == items
    assert kernel[-1] == progress.BLANK
    assert any(d["text/plain"].startswith("model 3/3") for d in kernel)


def test_keras_callback_counts_epochs_with_the_loss(kernel):
    from labkit.keras import keras
    from labkit.train import set_seed

    set_seed(0)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    x = np.random.default_rng(0).normal(size=(16, 2)).astype("float32")
    model.fit(x, x[:, :1], epochs=3, batch_size=8, verbose=0, callbacks=[progress.keras_epochs()])
    texts = [d["text/plain"] for d in kernel]
    assert texts[0] == "" and texts[-1] == ""
    assert [t.split("  ")[0] for t in texts[1:-1]] == ["epoch 1/3", "epoch 2/3", "epoch 3/3"]
    assert all("loss " in t for t in texts[1:-1])
