"""Diagrams of the lessons that are boxes and arrows rather than data (matplotlib, drawn offline).

:func:`plot_training_to_edge` — lesson 08's map from training frameworks and cloud platforms through
exchange formats to edge runtimes, with the course's own route drawn bold.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from matplotlib.patches import FancyBboxPatch

__all__ = ["TOOLCHAIN_COLUMNS", "TOOLCHAIN_ROUTES", "COURSE_ROUTE", "plot_training_to_edge"]

#: The columns of the map, left to right: a heading, then (box label, what it is for) per row.
TOOLCHAIN_COLUMNS: dict[str, list[tuple[str, str]]] = {
    "train (float32)": [
        ("TensorFlow / Keras", "this course"),
        ("PyTorch", "most research"),
        ("JAX", "Google research, TPUs"),
        ("cloud platforms", "Vertex AI, SageMaker, Azure ML:\nthe same frameworks on rented GPUs/TPUs"),
    ],
    "exchange formats": [
        (".tflite flatbuffer", "graph + weights, int8 or float"),
        ("ONNX", "one graph format, many frameworks"),
    ],
    "edge runtimes": [
        ("TFLite Micro", "interpreter, microcontrollers"),
        ("labkit-nn", "generated C, this course"),
        ("ONNX Runtime", "PCs, phones, Linux boards"),
        ("vendor tools", "STM32Cube.AI, NXP eIQ, CMSIS-NN, TVM"),
    ],
}

#: Arrows: (from box, to box, what does the step).
TOOLCHAIN_ROUTES: list[tuple[str, str, str]] = [
    ("TensorFlow / Keras", ".tflite flatbuffer", "TFLite converter"),
    ("TensorFlow / Keras", "ONNX", "tf2onnx"),
    ("PyTorch", "ONNX", "torch.onnx.export"),
    ("PyTorch", ".tflite flatbuffer", "ai-edge-torch"),
    ("JAX", ".tflite flatbuffer", "jax2tf"),
    (".tflite flatbuffer", "TFLite Micro", ""),
    (".tflite flatbuffer", "labkit-nn", ""),
    (".tflite flatbuffer", "vendor tools", ""),
    ("ONNX", "ONNX Runtime", ""),
    ("ONNX", "vendor tools", ""),
]

#: The route of this course, drawn bold: Keras -> int8 .tflite -> labkit-nn (and TFLite Micro as the reference).
COURSE_ROUTE = {("TensorFlow / Keras", ".tflite flatbuffer"), (".tflite flatbuffer", "labkit-nn"),
                (".tflite flatbuffer", "TFLite Micro")}

_COLORS = {"train (float32)": "#cfe2f3", "exchange formats": "#fff2cc", "edge runtimes": "#d9ead3"}
_X = {"train (float32)": 0.0, "exchange formats": 1.6, "edge runtimes": 3.2}
_Y = {"train (float32)": (3.6, 2.7, 1.8, 0.6), "exchange formats": (3.15, 1.5), "edge runtimes": (3.6, 2.6, 1.6, 0.6)}


def plot_training_to_edge(ax=None) -> Figure:
    """Training frameworks and cloud platforms, exchange formats and edge runtimes, with the conversions
    between them; the course's route (Keras -> int8 .tflite -> labkit-nn / TFLite Micro) in bold."""
    if ax is None:
        _, ax = plt.subplots(figsize=(13, 6.4), constrained_layout=True)
    width, height = 1.0, 0.62
    centres: dict[str, tuple[float, float]] = {}
    for column, boxes in TOOLCHAIN_COLUMNS.items():
        x = _X[column]
        ax.text(x, 4.3, column, ha="center", va="center", fontsize=11, fontweight="bold")
        for (label, purpose), y in zip(boxes, _Y[column]):
            cloud = label == "cloud platforms"
            centres[label] = (x, y)
            ax.add_patch(FancyBboxPatch((x - width / 2, y - height / 2), width, height, boxstyle="round,pad=0.02",
                                        facecolor="#eeeeee" if cloud else _COLORS[column], edgecolor="0.3", lw=1,
                                        ls="--" if cloud else "-"))
            ax.text(x, y + 0.13, label, ha="center", va="center", fontsize=9, fontweight="bold")
            ax.text(x, y - 0.14, purpose, ha="center", va="center", fontsize=7.5, color="0.25")
    ax.annotate("", xy=(0.0, 1.8 - height / 2), xytext=(0.0, 0.6 + height / 2),
                arrowprops=dict(arrowstyle="<->", lw=1, color="0.45", ls="--"))
    ax.text(0.04, 1.2, "training at scale", fontsize=7, color="0.3", va="center")
    for start, end, how in TOOLCHAIN_ROUTES:
        (x0, y0), (x1, y1) = centres[start], centres[end]
        bold = (start, end) in COURSE_ROUTE
        ax.annotate("", xy=(x1 - width / 2, y1), xytext=(x0 + width / 2, y0),
                    arrowprops=dict(arrowstyle="-|>", lw=2.6 if bold else 1.0, color="#0072B2" if bold else "0.45",
                                    shrinkA=2, shrinkB=2))
        if how:  # near the start of the arrow, where the arrows from one box are still apart
            t = 0.12
            lx, ly = x0 + width / 2 + (x1 - x0 - width) * t, y0 + (y1 - y0) * t
            ax.text(lx, ly, how, fontsize=7, color="#0072B2" if bold else "0.3", ha="left", va="center",
                    bbox=dict(boxstyle="round,pad=0.1", facecolor="white", edgecolor="none", alpha=0.9))
    # training and inference: the conversion is the border between them
    ax.plot([0.8, 0.8], [-0.1, 4.0], color="0.6", lw=1, ls=":")
    ax.text(0.0, -0.15, "TRAINING: forward + backward pass,\nfloat32, batches, GPUs/TPUs,\nminutes to days",
            ha="center", va="top", fontsize=9, color="0.2")
    ax.text(2.4, -0.15, "INFERENCE: forward pass only, int8 on a microcontroller,\none sample at a time, milliseconds",
            ha="center", va="top", fontsize=9, color="0.2")
    ax.plot([], [], color="#0072B2", lw=2.6, label="this course: Keras → int8 .tflite → labkit-nn / TFLite Micro")
    ax.plot([], [], color="0.45", lw=1, label="other routes")
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, -0.08), ncol=2, fontsize=8, frameon=False)
    ax.set_xlim(-0.6, 3.8)
    ax.set_ylim(-1.0, 4.5)
    ax.axis("off")
    return ax.figure
