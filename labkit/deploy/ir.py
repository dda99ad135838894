"""A small graph IR of an int8 TFLite model: what C generation needs, in plain Python."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Tensor:
    index: int
    name: str
    shape: tuple[int, ...]
    dtype: np.dtype
    scale: np.ndarray  # float32, one value per tensor or per channel; empty if not quantized
    zero_point: np.ndarray  # int64, same length as scale
    quantized_dimension: int = 0
    data: np.ndarray | None = None  # constant values (weights, biases, shapes), else None
    is_variable: bool = False  # state an op keeps between steps (an LSTM's hidden and cell state)

    @property
    def is_constant(self) -> bool:
        return self.data is not None

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) if self.shape else 1

    @property
    def nbytes(self) -> int:
        return self.size * np.dtype(self.dtype).itemsize

    @property
    def per_channel(self) -> bool:
        return len(self.scale) > 1


@dataclass
class Op:
    index: int
    kind: str  # the TFLite builtin name, e.g. "FULLY_CONNECTED"
    version: int
    inputs: tuple[int, ...]  # tensor indices; -1 marks an omitted optional input
    outputs: tuple[int, ...]
    options: dict = field(default_factory=dict)  # builtin options, snake_case keys
    intermediates: tuple[int, ...] = ()  # tensors that only carry quantization parameters (LSTM)


@dataclass
class Graph:
    tensors: list[Tensor]
    ops: list[Op]
    inputs: list[int]
    outputs: list[int]
    description: str = ""
    carry_state: bool = False  # stateful ops (LSTM) keep their state from one call to the next (streaming mode)

    def tensor(self, index: int) -> Tensor | None:
        return None if index < 0 else self.tensors[index]

    def op_inputs(self, op: Op) -> list[Tensor | None]:
        return [self.tensor(i) for i in op.inputs]

    def op_outputs(self, op: Op) -> list[Tensor]:
        return [self.tensors[i] for i in op.outputs]

    @property
    def op_kinds(self) -> list[str]:
        return sorted({op.kind for op in self.ops})
