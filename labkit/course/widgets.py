"""Sliders for the lessons (ipywidgets) that still leave a figure behind when nobody moves them.

An :class:`Explorer` shows its controls and, under them, an ordinary figure drawn for the
controls' current values. Moving a control redraws that figure in place. So:

- in JupyterLab (or Notebook 7, VS Code) you get live sliders;
- when the notebook runs headless (``nbconvert --execute``, nbval in CI) or is viewed where
  widgets cannot run (GitHub, a PDF), the figure for the default values is still there, stored
  as a plain PNG output — the slider is then just an inert line of text.

Set the environment variable ``LABKIT_STATIC_WIDGETS=1`` before starting Jupyter to skip the
controls altogether and get only the figures (for printing, or a frontend without widget
support). Nothing in labkit or its tests sets it.

Each control that triggers training (the regularization explorer) redraws only when released
(``continuous_update=False``) and remembers results it has already computed.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import ipywidgets as W
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from labkit.course import viz
from labkit.errors import LabkitError

__all__ = ["STATIC_ENV", "NOT_RUNNING", "static_only", "Explorer", "learning_rate_explorer", "regularization_explorer"]

#: Environment variable: set to 1 for figures only, no controls.
STATIC_ENV = "LABKIT_STATIC_WIDGETS"
#: What a notebook shows in place of the controls where no kernel runs them (a stored copy, the book):
#: one line saying what to do, never the widgets' repr.
NOT_RUNNING = "[sliders: run this cell to move them; the figure below shows the default setting]"


def static_only() -> bool:
    """True when ``LABKIT_STATIC_WIDGETS`` asks for figures without controls."""
    return os.environ.get(STATIC_ENV, "").strip().lower() in ("1", "true", "yes", "on")


class Explorer:
    """Controls plus a figure ``draw(**values)`` that follows them.

    ``draw`` gets one keyword argument per control (its current value) and returns a matplotlib
    ``Figure``. Display the explorer (make it the last line of a cell, or ``display(explorer)``)
    to show it; :meth:`render` draws the figure for the current values without displaying.
    """

    def __init__(self, draw: Callable[..., Figure], controls: Mapping[str, W.ValueWidget]):
        if not controls:
            raise LabkitError("an Explorer needs at least one control (a slider, a dropdown, ...)")
        self.draw = draw
        self.controls = dict(controls)
        self.figure: Figure | None = None
        self._handle = None
        self.box: W.VBox | None = None  # the controls, once displayed
        for control in self.controls.values():
            control.observe(self._on_change, names="value")

    @property
    def values(self) -> dict[str, Any]:
        return {name: control.value for name, control in self.controls.items()}

    def render(self) -> Figure:
        """Draw the figure for the current values (closed in pyplot, so only displaying shows it)."""
        fig = self.draw(**self.values)
        if not isinstance(fig, Figure):
            raise LabkitError(f"the draw function must return a matplotlib Figure, got {type(fig).__name__}")
        plt.close(fig)  # otherwise the inline backend would show it again after the next cell
        self.figure = fig
        return fig

    def _on_change(self, _change=None) -> None:
        fig = self.render()
        if self._handle is not None:
            self._handle.update(fig)

    def _ipython_display_(self) -> None:
        from IPython.display import display

        if not static_only():
            self.box = W.VBox(list(self.controls.values()))
            bundle = self.box._repr_mimebundle_()  # the widget's view, and a text for where it cannot show
            bundle["text/plain"] = NOT_RUNNING
            display(bundle, raw=True)
        self._handle = display(self.render(), display_id=True)

    def __repr__(self) -> str:
        values = ", ".join(f"{k}={v!r}" for k, v in self.values.items())
        return f"Explorer({values})"


def learning_rate_explorer(
    x: np.ndarray,
    y: np.ndarray,
    lr: float = 0.1,
    steps: int = 30,
    start: tuple[float, float] = (0.0, 0.0),
    slope_range: tuple[float, float] = (-1.0, 5.0),
    offset_range: tuple[float, float] = (-2.0, 4.0),
) -> Explorer:
    """A learning-rate slider (log scale, 0.001 to 1) and a steps slider over gradient descent on the line."""
    controls = {
        "lr": W.FloatLogSlider(value=lr, base=10, min=-3, max=0, step=0.05, description="learning rate",
                               readout_format=viz.LR_FORMAT, style={"description_width": "initial"},
                               layout=W.Layout(width="480px")),
        "steps": W.IntSlider(value=steps, min=1, max=200, step=1, description="steps",
                             style={"description_width": "initial"}, layout=W.Layout(width="480px")),
    }

    def draw(lr: float, steps: int) -> Figure:
        return viz.plot_learning_rates(x, y, [lr], steps=steps, start=start,
                                       slope_range=slope_range, offset_range=offset_range)

    return Explorer(draw, controls)


#: L2 factors the regularization explorer offers.
L2_CHOICES = (0.0, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1)


def regularization_explorer(
    fit: Callable[[float, float], tuple[np.ndarray, float, float]],
    x_grid: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    x_val: np.ndarray | None = None,
    y_val: np.ndarray | None = None,
    truth: np.ndarray | None = None,
    l2: float = 0.0,
    dropout: float = 0.0,
    l2_choices: Sequence[float] = L2_CHOICES,
) -> Explorer:
    """Sliders for the L2 factor and the dropout rate over a fit you supply.

    ``fit(l2, dropout)`` trains a model and returns ``(predictions on x_grid, training MSE,
    validation MSE)``; results are remembered, so going back to a setting is instant.
    """
    choices = sorted(set(float(v) for v in l2_choices) | {float(l2)})
    controls = {
        "l2": W.SelectionSlider(options=[(f"{v:g}", v) for v in choices], value=float(l2), description="L2 factor",
                                continuous_update=False, style={"description_width": "initial"},
                                layout=W.Layout(width="480px")),
        "dropout": W.FloatSlider(value=dropout, min=0.0, max=0.5, step=0.05, description="dropout rate",
                                 continuous_update=False, readout_format=".2f",
                                 style={"description_width": "initial"}, layout=W.Layout(width="480px")),
    }
    cache: dict[tuple[float, float], tuple[np.ndarray, float, float]] = {}

    def draw(l2: float, dropout: float) -> Figure:
        key = (float(l2), round(float(dropout), 4))
        if key not in cache:
            cache[key] = fit(*key)
        pred, train_mse, val_mse = cache[key]
        return viz.plot_many_fits(
            x_grid, np.atleast_2d(pred), x, y, truth=truth, x_val=x_val, y_val=y_val,
            title=f"L2 = {l2:g}, dropout = {dropout:.2f}: training MSE {train_mse:.3f}, validation MSE {val_mse:.3f}",
        )

    explorer = Explorer(draw, controls)
    explorer.cache = cache
    return explorer
