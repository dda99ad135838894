"""What a candidate costs on the board, measured before it is trained.

Flash, RAM and instructions of the labkit-nn C do not depend on the trained weights' values
(only on whether a bias is all zero, see :func:`as_if_trained`): the untrained model is converted to int8 (calibrated on a few training samples), its C is
generated, cross-compiled and linked for the nRF52840 (sizes from the linker's map) and, when
it fits, run on the emulated Cortex-M4 for instructions per inference (QEMU ``-icount``).
An infeasible candidate is thus rejected in seconds, before any epoch.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from labkit.automl.budget import Budget
from labkit.errors import LabkitError, UnsupportedModelError


def weight_lower_bound(model) -> int:
    """Bytes of flash the model's kernels take at least as int8 (batch normalization folds away)."""
    total = 0
    for layer in model.layers:
        kind = type(layer).__name__
        if kind in ("BatchNormalization", "InputLayer"):
            continue
        for w in layer.weights:
            if "kernel" in w.name:
                total += int(np.prod(w.shape))
    return total


def as_if_trained(model, seed: int = 0):
    """A copy of ``model`` whose all-zero weight arrays (fresh biases, batch normalization's beta and
    running mean) hold small random values, as after training.

    The values of trained weights do not change the C's sizes, but zeros do: the converter drops
    a bias that is all zero (and the C then passes NULL), which would measure a few bytes less
    than the trained model takes.
    """
    from labkit.train import copy_model

    rng = np.random.default_rng(seed)
    weights = [rng.uniform(0.01, 0.05, w.shape).astype(w.dtype) if w.size and not np.any(w) else w
               for w in model.get_weights()]
    clone = copy_model(model)
    clone.set_weights(weights)
    return clone


def input_bytes(input_shape) -> int:
    """RAM the int8 input alone needs: no model for this data can use less."""
    return int(np.prod(input_shape))


def measure_candidate(model, representative_x: np.ndarray, budget: Budget | None = None,
                      instructions: bool = True, samples: int = 2, seed: int = 0,
                      workdir: str | Path | None = None, tflite: bytes | None = None) -> dict:
    """Flash, RAM (as linked for the board), instructions per inference, params, MACs of ``model``.

    Returns a dict with those figures, ``fits`` (against ``budget``, when given), ``reason``
    (why not, or None) and ``measure_seconds``. Stops early, leaving the later figures None:
    after the weights alone exceed the flash limit, after a link that does not fit the board
    or the budget (no emulator run then). ``tflite``: the int8 model already converted (else
    ``model`` is converted, calibrated on ``representative_x``).
    """
    from labkit.compress.quantize import to_int8_tflite
    from labkit.deploy.codegen import generate_c
    from labkit.measure import count_macs
    from labkit.verify import build_cortex_m4, random_inputs, run_cortex_m4

    t0 = time.monotonic()
    fig = {"params": int(model.count_params()), "macs": int(count_macs(model)), "flash_bytes": None,
           "ram_bytes": None, "instructions": None, "arena_bytes": None, "tflite_bytes": None}

    def done(reason):
        fig["reason"] = reason
        fig["fits"] = reason is None
        fig["measure_seconds"] = round(time.monotonic() - t0, 2)
        return fig

    if budget is not None:
        low = weight_lower_bound(model)
        if low > budget.flash_bytes:
            return done(f"flash: its weights alone take {low:,} B > {budget.flash_bytes:,} B")
        if budget.macs is not None and fig["macs"] > budget.macs:
            return done(f"MACs {fig['macs']:,} > {budget.macs:,}")
    if tflite is None:
        tflite = to_int8_tflite(as_if_trained(model, seed), representative_x, samples=min(len(representative_x), 32),
                                seed=seed)
    fig["tflite_bytes"] = len(tflite)
    with tempfile.TemporaryDirectory(prefix="labkit-automl-", dir=workdir) as tmp:
        tmp = Path(tmp)
        try:
            cmodel = generate_c(tflite, tmp / "model", name="model")
        except UnsupportedModelError as e:  # a candidate the C back end cannot run is not a candidate
            return done(f"labkit-nn cannot run it: {str(e).splitlines()[0]}")
        fig["arena_bytes"] = int(cmodel.arena_bytes)
        try:
            elf, sizes = build_cortex_m4(cmodel, "tflm", tmp / "build")
        except LabkitError as e:
            if "does not fit" not in str(e):
                raise
            return done(f"does not fit the board at all ({cmodel.weights_bytes:,} B of weights, "
                        f"{cmodel.arena_bytes:,} B arena)")
        fig.update(sizes)
        reasons = budget.violations(fig) if budget is not None else []
        if reasons:
            return done(", ".join(reasons))
        if instructions:
            inputs = random_inputs(cmodel, samples, seed)
            _, counts = run_cortex_m4(elf, inputs, cmodel.output.size, tmp / "run", cmodel.output.dtype)
            fig["instructions"] = int(counts["instructions"])
    reasons = budget.violations(fig) if budget is not None else []
    return done(", ".join(reasons) if reasons else None)
