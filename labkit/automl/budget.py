"""A board budget (flash, RAM, instructions, MACs), sizes as people write them, and NetScore."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from labkit.datacheck import parse_count, parse_size  # noqa: F401  (re-exported: the figures of a budget)
from labkit.errors import LabkitError

@dataclass(frozen=True)
class Budget:
    """What the board allows: flash and RAM in bytes; instructions per inference and MACs, if bounded."""

    flash_bytes: int
    ram_bytes: int
    instructions: int | None = None
    macs: int | None = None

    def as_dict(self) -> dict:
        return asdict(self)

    def violations(self, figures: dict) -> list[str]:
        """Why ``figures`` (flash_bytes, ram_bytes, instructions, macs) do not fit; empty when they do."""
        out = []
        for key, label, unit in (("flash_bytes", "flash", " B"), ("ram_bytes", "RAM", " B"),
                                 ("instructions", "instructions", ""), ("macs", "MACs", "")):
            limit, value = getattr(self, key), figures.get(key)
            if limit is not None and value is not None and value > limit:
                out.append(f"{label} {value:,}{unit} > {limit:,}{unit}")
        return out

    def constraints(self, figures: dict) -> dict[str, float]:
        """Optuna constraint values, one per bounded figure: (value - limit) / limit; <= 0 means it fits.

        A figure that was not measured (the measurement stopped at an earlier limit) counts as far over.
        """
        out = {}
        for key in ("flash_bytes", "ram_bytes", "instructions", "macs"):
            limit = getattr(self, key)
            if limit is not None:
                value = figures.get(key)
                out[key] = 10.0 if value is None else (value - limit) / limit
        return out


def netscore(accuracy: float | None, params: int, macs: int) -> float | None:
    """NetScore (Wong 2018): 20 log10(a^2 / (p^0.5 m^0.5)), a = accuracy in %, p and m in millions.

    Higher is better. None when accuracy is unknown or zero, or the model has no parameters/MACs.
    """
    if accuracy is None or accuracy <= 0 or params <= 0 or macs <= 0:
        return None
    a = 100.0 * accuracy
    return 20.0 * math.log10(a**2 / (math.sqrt(params / 1e6) * math.sqrt(macs / 1e6)))
