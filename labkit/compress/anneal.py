"""Simulated annealing over per-layer replacements, with a temperature for each layer.

The search state is one choice per replaceable layer (:func:`layer_options`: keep it, or one of
:mod:`labkit.compress.replace`'s replacements at one rank or width). The objective is the
validation accuracy of the candidate after a short fine-tune, under a budget on the int8
model's flash (the labkit-nn C linked for the Cortex-M4, :func:`labkit.measure.measure_model`),
its instructions per inference, or its parameters. A candidate's cost does not depend on its
trained weights, so it is measured before any training, and one over budget is rejected
without training.

Schedule (Deeplite's description, "a temperature for each layer"): every layer starts at
``t_start``. A step picks a layer at random and proposes a neighbouring choice for it (one
step larger or smaller, or now and then any choice of its list). A proposal is accepted when
its objective is no worse, else with probability exp(Δ / T_layer) (Δ < 0, Metropolis). After
an accepted move that layer's temperature is multiplied by ``cool`` (< 1: it settles); after a
rejected one (worse and refused, or over budget) by ``heat`` (> 1: the layer is stuck, so the
next worse move is accepted more easily and it can escape). Temperatures stay within
[``t_min``, ``t_max``]. The smallest choice of every layer is measured first: when that is over
budget the budget cannot be met, and :class:`BudgetError` says the smallest size reached. The
search then starts (``start="greedy"``, the default) from the original model, the layer with the
most parameters made one choice smaller at a time until the whole fits: the large layers are
cut first and the small ones, which cost little flash but much accuracy, are kept.
``start="uniform"`` starts from uniform scaling instead: every layer at the same relative place q
in its list of choices, q the largest within budget found by ``start_probes`` bisection steps.
Neither start trains anything: they measure costs only.

The random draws come from ``numpy.random.default_rng(seed)`` and every fine-tune is seeded,
so a search repeats exactly.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from labkit.compress.replace import (
    describe,
    fine_tune_replaced,
    full_rank,
    params_of,
    replace_layers,
    replaceable,
)
from labkit.compress.structured import _chain
from labkit.errors import LabkitError

BUDGET_KINDS = {"flash": "flash_bytes", "instructions": "instructions", "params": "params"}
UNITS = {"flash": "B of flash", "instructions": "instructions per inference", "params": "parameters"}


class BudgetError(LabkitError, ValueError):
    """A budget that no candidate meets."""


@dataclass(frozen=True)
class Budget:
    """An upper bound on one cost of the int8 model: ``kind`` is flash, instructions or params."""

    kind: str
    limit: int

    def __post_init__(self):
        if self.kind not in BUDGET_KINDS:
            raise LabkitError(f"budget kind must be one of {', '.join(BUDGET_KINDS)}, got {self.kind!r}")
        if int(self.limit) < 1:
            raise LabkitError(f"the {self.kind} budget must be at least 1, got {self.limit!r}")

    def text(self, value) -> str:
        return f"{int(value):,} {UNITS[self.kind]}"


def linked_flash(tflite: bytes) -> dict:
    """flash_bytes and ram_bytes of an int8 .tflite's labkit-nn C as linked for the Cortex-M4 (no emulator run).

    The same figures as ``labkit verify --target cortex-m4`` and :func:`labkit.measure.measure_model`
    (the linker's map, :func:`labkit.verify.linked_sizes`); ``None`` for both when it does not fit the board.
    """
    import tempfile
    from pathlib import Path

    from labkit.deploy.codegen import generate_c
    from labkit.verify import build_cortex_m4

    with tempfile.TemporaryDirectory(prefix="labkit-shrink-") as tmp:
        cmodel = generate_c(bytes(tflite), Path(tmp) / "model", name="model")
        try:
            _, sizes = build_cortex_m4(cmodel, "tflm", Path(tmp) / "build")
        except LabkitError as e:
            if "does not fit" not in str(e):
                raise
            return {"flash_bytes": None, "ram_bytes": None}
    return {"flash_bytes": int(sizes["flash_bytes"]), "ram_bytes": int(sizes["ram_bytes"])}


def costs(model, x: np.ndarray, what: str = "flash", seed: int = 0) -> dict:
    """params and MACs of ``model``; for ``what="flash"`` also the int8 model's linked flash_bytes and
    ram_bytes, for ``"instructions"`` those and instructions per inference on the emulated Cortex-M4
    (:func:`labkit.measure.measure_model`). Calibrated on 32 samples of ``x``: sizes do not depend on it."""
    from labkit.compress.quantize import to_int8_tflite
    from labkit.measure import count_macs, measure_model

    out = {"params": int(model.count_params()), "macs": int(count_macs(model)), "flash_bytes": None,
           "ram_bytes": None, "instructions": None}
    if what == "flash":
        out.update(linked_flash(to_int8_tflite(model, x[:32], samples=32, seed=seed)))
    elif what == "instructions":
        m = measure_model(model, representative_x=x[:32], device=True, samples=1, seed=seed)
        out.update({k: m[k] for k in ("flash_bytes", "ram_bytes", "instructions")})
    return out


def layer_options(model, kinds=("separable", "bottleneck", "spatial", "lowrank", "width"),
                  include_classifier: bool = False) -> dict[str, list[tuple]]:
    """For each replaceable layer, its choices with fewer parameters than the layer, smallest first, then keep.

    The classifier (the last weight layer) is left out unless ``include_classifier``: its outputs are the classes."""
    _, body = _chain(model)
    by_name = {l.name: l for l in body}
    out = {}
    found = replaceable(model)
    classifier = list(found)[-1] if found else None
    for name, applicable in found.items():
        layer = by_name[name]
        if name == classifier and not include_classifier:
            continue
        own = int(layer.count_params())
        choices = set()
        for kind in applicable:
            if kind not in kinds:
                continue
            if kind == "width":
                choices.update(("width", f) for f in (0.25, 0.5, 0.75))
                continue
            full = full_rank(layer, kind)
            sizes = {1, 2, 4} if kind == "separable" else {max(1, full // d) for d in (16, 12, 8, 6, 4, 3, 2)}
            choices.update((kind, s) for s in sizes if s <= full)
        ranked = sorted((c for c in choices if params_of(layer, c) < own), key=lambda c: (params_of(layer, c), c))
        if ranked:
            out[name] = ranked + [("keep",)]
    return out


@dataclass
class AnnealResult:
    """The best plan found, its objective (validation accuracy) and cost, and every step taken."""

    plan: dict[str, tuple]
    accuracy: float
    cost: int
    budget: Budget
    history: list[dict] = field(default_factory=list)
    temperatures: dict[str, float] = field(default_factory=dict)


def anneal(model, x: np.ndarray, y: np.ndarray, x_val: np.ndarray, y_val: np.ndarray, budget: Budget,
           steps: int = 20, epochs: int = 1, distil: bool = True, temperature: float = 4.0, alpha: float = 0.7,
           batch_size: int = 32, learning_rate: float = 1e-3, seed: int = 0, options: dict | None = None,
           t_start: float = 0.02, cool: float = 0.7, heat: float = 1.5, t_min: float = 1e-3, t_max: float = 0.2,
           start: str = "greedy", start_probes: int = 3, teacher=None,
           log: Callable[[str], None] | None = None) -> AnnealResult:
    """Search per-layer replacements of ``model`` for the best validation accuracy within ``budget``.

    Each candidate is built by :func:`replace_layers`, measured (its cost untrained), and when
    within budget fine-tuned for ``epochs`` on ``(x, y)`` — distilled from ``teacher`` (default
    ``model`` itself) when ``distil`` — then scored on ``(x_val, y_val)``. ``options``: {layer: [choices]} to search
    (default :func:`layer_options`). See the module docstring for the temperature schedule.
    """
    from labkit.train import accuracy

    teacher = model if teacher is None else teacher
    if distil and teacher is not model:
        from labkit.compress.distill import check_teacher

        check_teacher(model, teacher)
    options = layer_options(model) if options is None else {k: list(v) for k, v in options.items()}
    if not options:
        raise LabkitError(f"the model {model.name!r} has no layer that a replacement makes smaller")
    if not (0 < cool < 1 < heat and 0 < t_min <= t_start <= t_max):
        raise LabkitError("the schedule needs 0 < cool < 1 < heat and 0 < t_min <= t_start <= t_max")
    if start not in ("greedy", "uniform"):
        raise LabkitError(f"start must be 'greedy' or 'uniform', got {start!r}")
    say = log or (lambda m: None)
    rng = np.random.default_rng(seed)
    names = list(options)
    cost_cache: dict[tuple, dict] = {}
    score_cache: dict[tuple, float] = {}

    def plan_of(state) -> dict:
        return {n: options[n][i] for n, i in zip(names, state) if options[n][i][0] != "keep"}

    def cost_of(state) -> dict:
        if state not in cost_cache:
            cost_cache[state] = costs(replace_layers(model, plan_of(state)).model, x, what=budget.kind, seed=seed)
        return cost_cache[state]

    def score_of(state) -> float:
        if state not in score_cache:
            student = replace_layers(model, plan_of(state)).model
            fine_tune_replaced(student, teacher, x, y, epochs=epochs, distil=distil, temperature=temperature,
                               alpha=alpha, batch_size=batch_size, learning_rate=learning_rate, seed=seed)
            score_cache[state] = accuracy(student, x_val, y_val)
        return score_cache[state]

    key = BUDGET_KINDS[budget.kind]

    def level(q: float) -> tuple:  # every layer at the same relative position in its list: uniform scaling
        return tuple(int(round(q * (len(options[n]) - 1))) for n in names)

    state = level(0.0)
    c = cost_of(state)[key]
    if c is None or c > budget.limit:
        raise BudgetError(
            f"the {budget.kind} budget of {budget.text(budget.limit)} cannot be met: the smallest model the "
            f"replacements reach takes {budget.text(c) if c is not None else 'more than the board holds'}; "
            "give a larger budget"
        )
    if start == "uniform":
        low, high = 0.0, 1.0  # the largest uniform level within budget starts the search
        for _ in range(start_probes):
            mid = (low + high) / 2
            mc = cost_of(level(mid))[key]
            if mc is not None and mc <= budget.limit:
                low, state, c = mid, level(mid), mc
            else:
                high = mid
    else:  # greedy: from every layer kept, the largest layer one choice smaller at a time until it fits
        _, body = _chain(model)
        by_name = {l.name: l for l in body}
        greedy = level(1.0)
        while True:
            gc = cost_of(greedy)[key]
            if gc is not None and gc <= budget.limit:
                state, c = greedy, gc
                break
            movable = [i for i in range(len(names)) if greedy[i] > 0]  # never empty: the smallest state fits
            li = max(movable, key=lambda i: (params_of(by_name[names[i]], options[names[i]][greedy[i]]), -i))
            greedy = greedy[:li] + (greedy[li] - 1,) + greedy[li + 1:]
    current = score_of(state)
    best = (current, -c, state)
    temps = {n: float(t_start) for n in names}
    history: list[dict] = []
    say(f"start: {_plan_text(plan_of(state))}  {budget.text(c)}  accuracy {current:.4f}")
    for step in range(1, steps + 1):
        layer = names[int(rng.integers(len(names)))]
        li = names.index(layer)
        n_opts = len(options[layer])
        if n_opts == 1:
            continue
        if rng.random() < 0.25:
            new_i = int(rng.integers(n_opts - 1))
            new_i += new_i >= state[li]  # any other choice
        else:
            new_i = state[li] + (1 if rng.random() < 0.5 else -1)
            new_i = min(max(new_i, 0), n_opts - 1)
            if new_i == state[li]:
                new_i = state[li] + (1 if new_i == 0 else -1)
        proposal = state[:li] + (new_i,) + state[li + 1:]
        pc = cost_of(proposal)[key]
        entry = {"step": step, "layer": layer, "choice": describe(options[layer][new_i]), "cost": pc,
                 "temperature": round(temps[layer], 5)}
        if pc is None or pc > budget.limit:
            accepted, score = False, None
            entry["why"] = "over budget"
        else:
            score = score_of(proposal)
            delta = score - current
            accepted = delta >= 0 or rng.random() < math.exp(delta / temps[layer])
        temps[layer] = min(max(temps[layer] * (cool if accepted else heat), t_min), t_max)
        entry.update(accuracy=score, accepted=accepted)
        if accepted:
            state, current = proposal, score
            if (score, -pc) > best[:2]:
                best = (score, -pc, state)
        say(f"step {step:>3}: {layer} -> {entry['choice']:<16} {budget.text(pc) if pc is not None else 'too big':>28}  "
            + (f"accuracy {score:.4f}  " if score is not None else "") + ("accepted" if accepted else "rejected"))
        entry["plan"] = _plan_text(plan_of(proposal))
        history.append(entry)
    return AnnealResult(plan=plan_of(best[2]), accuracy=best[0], cost=-best[1], budget=budget,
                        history=history, temperatures=temps)


def _plan_text(plan: dict) -> str:
    return ", ".join(f"{n}: {describe(c)}" for n, c in plan.items()) or "nothing replaced"
