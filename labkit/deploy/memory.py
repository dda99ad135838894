"""Static memory plan: one arena, tensor offsets fixed at generation time from lifetimes.

Two buffers may share bytes when their lifetimes (first op that writes them .. last op that
reads them) do not overlap. Two placements are tried and the smaller arena is kept:
greedy-by-size first fit (what TFLite Micro's planner does), and, for a plain chain of ops,
"ping-pong" (alternate ends of the arena), which always reaches the lower bound
max over ops of (input + output + scratch).
"""

from __future__ import annotations

from dataclasses import dataclass

ALIGN = 8


def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


@dataclass
class Buffer:
    key: object  # a tensor index, or ("scratch", op index)
    size: int
    first: int  # index of the first op that uses it (-1: before the first op, a graph input)
    last: int  # index of the last op that uses it (n_ops: after the last op, a graph output)
    offset: int = 0

    def overlaps_in_time(self, other: "Buffer") -> bool:
        return not (self.last < other.first or other.last < self.first)


@dataclass
class MemoryPlan:
    buffers: list[Buffer]
    arena_bytes: int
    lower_bound: int
    strategy: str

    def offset_of(self, key) -> int:
        for b in self.buffers:
            if b.key == key:
                return b.offset
        raise KeyError(key)


def _first_fit(buffers: list[Buffer]) -> int:
    placed: list[Buffer] = []
    for b in sorted(buffers, key=lambda b: (-b.size, b.first)):
        offset = 0
        for p in sorted((p for p in placed if p.overlaps_in_time(b)), key=lambda p: p.offset):
            if offset + b.size <= p.offset:
                break
            offset = max(offset, _align(p.offset + p.size))
        b.offset = offset
        placed.append(b)
    return _align(max((b.offset + b.size for b in buffers), default=0))


def _is_scratch(b: Buffer) -> bool:
    return isinstance(b.key, tuple) and b.key[:1] == ("scratch",)


def _ping_pong(buffers: list[Buffer], steps: list[list[Buffer]]) -> int | None:
    """For a chain (each op reads the previous op's output): alternate tensors between the two
    ends of the arena; an op's scratch goes in the gap between its input and its output."""
    tensors = sorted((b for b in buffers if not _is_scratch(b)), key=lambda b: b.first)
    for a, b in zip(tensors, tensors[1:]):
        if b.first != a.last:  # not a chain
            return None
    if any(sum(not _is_scratch(b) for b in s) > 2 for s in steps):
        return None
    arena = max((sum(_align(b.size) for b in s) for s in steps), default=0)
    low_end = {}  # op index -> bytes taken at the low end of the arena while it runs
    for i, b in enumerate(tensors):
        b.offset = 0 if i % 2 == 0 else arena - _align(b.size)
        if i % 2 == 0:
            for op in range(b.first, b.last + 1):
                low_end[op] = _align(b.size)
    for b in sorted((b for b in buffers if _is_scratch(b)), key=lambda b: (b.first, str(b.key))):
        b.offset = low_end.get(b.first, 0)  # above the low-end tensor, below the high-end one
        low_end[b.first] = b.offset + _align(b.size)
    return arena


def plan(buffers: list[Buffer], n_ops: int) -> MemoryPlan:
    """Place ``buffers`` in one arena; ``n_ops`` is the number of ops that run."""
    steps = [[b for b in buffers if b.first <= i <= b.last] for i in range(-1, n_ops + 1)]
    lower = max((sum(_align(b.size) for b in s) for s in steps), default=0)
    greedy = _first_fit(buffers)
    offsets = [b.offset for b in buffers]
    pp = _ping_pong(buffers, steps)
    if pp is not None and pp < greedy:
        return MemoryPlan(buffers, pp, lower, "ping-pong")
    for b, o in zip(buffers, offsets):
        b.offset = o
    return MemoryPlan(buffers, greedy, lower, "greedy-by-size")
