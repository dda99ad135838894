"""Fit to budget: shrink a user's model until its int8 C fits the board, keeping what accuracy it can.

The ladder, cheapest first: int8 as it is; then the same architecture narrower — every
Dense/Conv layer but the classifier loses the same fraction of its units/filters (width
scaling by structured pruning, :mod:`labkit.compress.structured`, the most salient units kept
with their weights). The sizes of each width are measured as linked for the board before any
training, and the widest that fits is kept (bisection over fractions in steps of 1/8, then 15/16).
Then per layer: one layer at a time gets a step of its width back while the whole still fits
(a layer that costs little — a small convolution before a large Dense — ends wider than one
that costs much), until no layer can widen. The result is fine-tuned, and quantization-aware
training is tried too: it is used when its int8 accuracy on a validation split is higher than
post-training quantization's.
"""

from __future__ import annotations

import time

import numpy as np

from labkit.automl.budget import Budget, netscore
from labkit.automl.costs import input_bytes, measure_candidate
from labkit.errors import LabkitError

FRACTIONS = tuple(i / 8 for i in range(1, 8)) + (15 / 16,)  # of the units of every layer removed


def _figures_line(fig: dict) -> str:
    parts = [f"flash {fig['flash_bytes']:,} B" if fig.get("flash_bytes") is not None else None,
             f"RAM {fig['ram_bytes']:,} B" if fig.get("ram_bytes") is not None else None,
             f"{fig['instructions']:,} instructions" if fig.get("instructions") is not None else None]
    return ", ".join(p for p in parts if p)


def fit_to_budget(model, x: np.ndarray, y: np.ndarray, budget: Budget, *, x_test=None, y_test=None,
                  epochs: int = 5, qat: bool | None = None, seed: int = 0, log=print):
    """The model shrunk to ``budget``: returns (Keras model, int8 .tflite bytes, report dict).

    ``qat``: None (default) tries quantization-aware training and keeps it when it helps; True
    always uses it; False never. The report holds ``before`` and ``after`` (accuracy, flash,
    RAM, instructions, params, MACs), the uniform ``fraction`` of units removed that fit first, the
    ``fractions`` per layer after widening, ``qat`` and ``fits``.
    A budget that nothing reachable fits raises LabkitError with the smallest figures reached.
    """
    from sklearn.model_selection import train_test_split

    from labkit.automl.search import check_data
    from labkit.compress.qat import prefer_qat
    from labkit.compress.quantize import evaluate_tflite, to_int8_tflite
    from labkit.compress.structured import fine_tune, prune_structured
    from labkit.train import accuracy, set_seed

    t0 = time.monotonic()
    x = np.asarray(x, np.float32)
    check_data(x, np.asarray(y), "--data")
    shape = tuple(int(d) for d in model.input_shape[1:])
    if tuple(x.shape[1:]) != shape:
        raise LabkitError(f"--data: samples of shape {tuple(x.shape[1:])}, the model takes {shape}")
    need = input_bytes(shape)
    if need > budget.ram_bytes:
        raise LabkitError(f"nothing fits: the int8 input alone takes {need:,} B of RAM > {budget.ram_bytes:,} B; the "
                          f"smallest reachable is RAM {need:,} B plus the first layer's output (smaller inputs or "
                          "more RAM)")
    x_tr, x_val, y_tr, y_val = train_test_split(x, y, test_size=0.2, stratify=y, random_state=seed)
    ex, ey = (x_test, y_test) if x_test is not None else (x_val, y_val)
    repr_x = x_tr[:64]

    def evaluate(m, tflite):
        return {"float_accuracy": accuracy(m, ex, ey), "int8_accuracy": evaluate_tflite(tflite, ex, ey)}

    tflite = to_int8_tflite(model, x_tr, seed=seed)
    before = measure_candidate(model, repr_x, None, tflite=tflite, seed=seed)
    before.update(evaluate(model, tflite))
    before["fits"] = not budget.violations(before)
    log(f"as it is, in int8: {_figures_line(before)}, int8 accuracy {before['int8_accuracy']:.4f}"
        + ("" if before["fits"] else f" — over: {', '.join(budget.violations(before))}"))
    fraction, used_qat, result = 0.0, False, model
    fractions = {}
    if not before["fits"]:
        measured: dict[float, dict] = {}

        def at(f):
            if f not in measured:
                small = prune_structured(model, f, criterion="l1")
                fig = measure_candidate(small, repr_x, budget, seed=seed)
                measured[f] = fig
                log(f"  {f:.4f} of the units removed: " + (f"fits ({_figures_line(fig)})" if fig["fits"]
                                                          else f"too big: {fig['reason']}"))
            return measured[f]

        lo, hi = 0, len(FRACTIONS) - 1
        if not at(FRACTIONS[hi])["fits"]:
            fig = measured[FRACTIONS[hi]]
            raise LabkitError(f"nothing fits: even with {FRACTIONS[hi]:.0%} of every layer's units removed the model "
                              f"takes {_figures_line(fig) or fig['reason']} (limits: flash {budget.flash_bytes:,} B, "
                              f"RAM {budget.ram_bytes:,} B" + (f", {budget.instructions:,} instructions"
                                                               if budget.instructions else "") + ")")
        while lo < hi:  # the smallest fraction (widest model) that fits
            mid = (lo + hi) // 2
            if at(FRACTIONS[mid])["fits"]:
                hi = mid
            else:
                lo = mid + 1
        fraction = FRACTIONS[lo]
        fractions = _widen_per_layer(model, fraction, budget, repr_x, seed, log)
        set_seed(seed)
        small = prune_structured(model, fractions, criterion="l1")
        log(f"fine-tuning the model with {_fractions_text(fractions)} of the units removed ({epochs} epochs)")
        fine_tune(small, x_tr, y_tr, epochs=epochs, seed=seed)
        ptq = to_int8_tflite(small, x_tr, seed=seed)
        result, tflite = small, ptq
        tflite, used_qat = prefer_qat(small, ptq, x_tr, y_tr, x_val, y_val, qat=qat, epochs=max(1, epochs // 2),
                                      seed=seed, log=log)
    after = measure_candidate(result, repr_x, None, tflite=tflite, seed=seed) if result is not model else dict(before)
    after.update(evaluate(result, tflite))
    after["fits"] = not budget.violations(after)
    if not after["fits"]:
        raise LabkitError(f"the fine-tuned model came out over the budget ({', '.join(budget.violations(after))}): "
                          "please report it")
    for fig in (before, after):
        fig["netscore"] = netscore(fig["int8_accuracy"], fig["params"], fig["macs"])
    report = {"before": _clean(before), "after": _clean(after), "budget": budget.as_dict(), "fraction": fraction,
              "fractions": fractions, "qat": used_qat, "fits": True, "accuracy_on": "test" if x_test is not None else "validation split",
              "seconds": round(time.monotonic() - t0, 1)}
    return result, tflite, report


def _fractions_text(fractions: dict) -> str:
    return ", ".join(f"{name} {f:.3f}" for name, f in fractions.items())


def _widen_per_layer(model, fraction: float, budget: Budget, repr_x, seed: int, log) -> dict:
    """Per-layer fractions, starting from ``fraction`` everywhere: give layers width back while it fits.

    Round robin over the pruned layers: each takes the next smaller fraction of FRACTIONS (or 0)
    if the whole model, measured as linked, still fits; repeated until no layer can widen.
    """
    from labkit.compress.structured import default_layers, prune_structured

    names = default_layers(model)
    current = {n: fraction for n in names}
    steps = (0.0,) + FRACTIONS
    blocked: set[str] = set()
    while len(blocked) < len(names):
        for name in names:
            if name in blocked:
                continue
            i = steps.index(current[name])
            if i == 0:
                blocked.add(name)
                continue
            trial = dict(current, **{name: steps[i - 1]})
            fig = measure_candidate(prune_structured(model, trial, criterion="l1"), repr_x, budget, seed=seed)
            if fig["fits"]:
                current = trial
            else:
                blocked.add(name)
    if any(f != fraction for f in current.values()):
        log(f"  per layer, widened while it fits: {_fractions_text(current)} of the units removed")
    return current


def _clean(fig: dict) -> dict:
    keys = ("float_accuracy", "int8_accuracy", "flash_bytes", "ram_bytes", "instructions", "params", "macs",
            "arena_bytes", "tflite_bytes", "netscore", "fits")
    return {k: fig.get(k) for k in keys}


def format_table(report: dict) -> str:
    """Before / after / limit, one row per figure."""
    b, a, lim = report["before"], report["after"], report["budget"]

    def cell(v, acc=False):
        if v is None:
            return "-"
        return f"{v:.4f}" if acc else f"{v:,}"

    rows = [("", "before", "after", "limit"),
            ("float accuracy", cell(b["float_accuracy"], True), cell(a["float_accuracy"], True), ""),
            ("int8 accuracy", cell(b["int8_accuracy"], True), cell(a["int8_accuracy"], True), ""),
            ("flash bytes", cell(b["flash_bytes"]), cell(a["flash_bytes"]), cell(lim["flash_bytes"])),
            ("RAM bytes", cell(b["ram_bytes"]), cell(a["ram_bytes"]), cell(lim["ram_bytes"])),
            ("instructions", cell(b["instructions"]), cell(a["instructions"]), cell(lim["instructions"])),
            ("params", cell(b["params"]), cell(a["params"]), ""),
            ("MACs", cell(b["macs"]), cell(a["macs"]), cell(lim["macs"])),
            ("NetScore", "-" if b["netscore"] is None else f"{b['netscore']:.1f}",
             "-" if a["netscore"] is None else f"{a['netscore']:.1f}", "")]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    return "\n".join("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))).rstrip()
                     for r in rows)
