"""A small reader for the TFLite flatbuffer: tensors, constant buffers, operators and their options.

Only what weight import needs is decoded (field numbers from TensorFlow Lite's ``schema.fbs``), so
importing weights needs the ``flatbuffers`` runtime and nothing from TensorFlow.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from backdrop.errors import ModelError

try:
    from flatbuffers import number_types
    from flatbuffers.table import Table
except ImportError:  # pragma: no cover - depends on the installed extras
    Table = None

# TensorType values from schema.fbs.
_DTYPES = {0: np.float32, 1: np.float16, 2: np.int32, 3: np.uint8, 4: np.int64, 9: np.int8}
# BuiltinOperator values used by the selfie segmentation models (and a few neighbours for clear errors).
BUILTIN_NAMES = {
    0: "ADD",
    1: "AVERAGE_POOL_2D",
    2: "CONCATENATION",
    3: "CONV_2D",
    4: "DEPTHWISE_CONV_2D",
    6: "DEQUANTIZE",
    14: "LOGISTIC",
    18: "MUL",
    19: "RELU",
    21: "RELU6",
    22: "RESHAPE",
    23: "RESIZE_BILINEAR",
    32: "CUSTOM",
    67: "TRANSPOSE_CONV",
    117: "HARD_SWISH",
}
# ActivationFunctionType values.
FUSED_ACTIVATIONS = {0: None, 1: "relu", 3: "relu6"}
PADDINGS = {0: "same", 1: "valid"}


@dataclass(frozen=True)
class TFLiteTensor:
    index: int
    name: str
    shape: tuple[int, ...]
    dtype: type
    buffer: int


@dataclass
class TFLiteOperator:
    """One operator with its decoded options (stride, padding, fused activation, resize flags …)."""

    kind: str
    inputs: list[int]
    outputs: list[int]
    options: dict[str, object] = field(default_factory=dict)
    custom_options: bytes = b""


class _Reader:
    """Helpers over flatbuffers' Table for vectors, strings and scalars by field number."""

    def __init__(self, buf: bytes) -> None:
        self.buf = bytearray(buf)

    def table(self, pos: int) -> Table:
        return Table(self.buf, pos)

    def root(self) -> Table:
        return self.table(int.from_bytes(self.buf[0:4], "little"))

    @staticmethod
    def _offset(table: Table, field_id: int) -> int:
        return table.Offset(4 + 2 * field_id)

    def scalar(self, table: Table, field_id: int, kind, default=0):
        off = self._offset(table, field_id)
        return table.Get(kind, table.Pos + off) if off else default

    def string(self, table: Table, field_id: int) -> str:
        off = self._offset(table, field_id)
        return table.String(table.Pos + off).decode() if off else ""

    def vector_len(self, table: Table, field_id: int) -> int:
        off = self._offset(table, field_id)
        return table.VectorLen(off) if off else 0

    def table_vector(self, table: Table, field_id: int) -> list[Table]:
        off = self._offset(table, field_id)
        if not off:
            return []
        start = table.Vector(off)
        return [self.table(table.Indirect(start + 4 * i)) for i in range(table.VectorLen(off))]

    def numeric_vector(self, table: Table, field_id: int, dtype) -> np.ndarray:
        off = self._offset(table, field_id)
        if not off:
            return np.zeros(0, dtype=dtype)
        start, count = table.Vector(off), table.VectorLen(off)
        return np.frombuffer(bytes(self.buf[start : start + count * np.dtype(dtype).itemsize]), dtype=dtype)

    def subtable(self, table: Table, field_id: int) -> Table | None:
        off = self._offset(table, field_id)
        return self.table(table.Indirect(table.Pos + off)) if off else None


class TFLiteModel:
    """The first subgraph of a .tflite file: tensors by index, constants as numpy, operators in order."""

    def __init__(self, data: bytes, *, name: str = "model") -> None:
        if Table is None:
            raise ModelError("reading .tflite files needs the flatbuffers package: pip install 'backdrop-video[keras]'")
        if data[4:8] != b"TFL3":
            raise ModelError(f"{name} is not a TFLite flatbuffer (missing TFL3 identifier)")
        self._r = r = _Reader(data)
        model = r.root()
        self._buffers = r.table_vector(model, 4)
        opcodes = [self._opcode_name(code) for code in r.table_vector(model, 1)]
        subgraphs = r.table_vector(model, 2)
        if not subgraphs:
            raise ModelError(f"{name} has no subgraph")
        graph = subgraphs[0]
        self.tensors = [self._tensor(i, t) for i, t in enumerate(r.table_vector(graph, 0))]
        self.inputs = r.numeric_vector(graph, 1, np.int32).tolist()
        self.outputs = r.numeric_vector(graph, 2, np.int32).tolist()
        self.operators = [self._operator(op, opcodes) for op in r.table_vector(graph, 3)]

    @classmethod
    def from_file(cls, path: Path) -> TFLiteModel:
        try:
            return cls(path.read_bytes(), name=str(path))
        except OSError as e:
            raise ModelError(f"cannot read {path}: {e.strerror}") from e

    def _opcode_name(self, code: Table) -> str:
        r = self._r
        builtin = max(r.scalar(code, 0, number_types.Int8Flags), r.scalar(code, 3, number_types.Int32Flags))
        if builtin == 32:
            return r.string(code, 1)
        return BUILTIN_NAMES.get(builtin, f"BUILTIN_{builtin}")

    def _tensor(self, index: int, t: Table) -> TFLiteTensor:
        r = self._r
        type_code = r.scalar(t, 1, number_types.Int8Flags)
        if type_code not in _DTYPES:
            raise ModelError(f"tensor {r.string(t, 3)!r} has unsupported type code {type_code}")
        shape = tuple(int(v) for v in r.numeric_vector(t, 0, np.int32))
        return TFLiteTensor(index, r.string(t, 3), shape, _DTYPES[type_code], r.scalar(t, 2, number_types.Uint32Flags))

    def _operator(self, op: Table, opcodes: list[str]) -> TFLiteOperator:
        r = self._r
        kind = opcodes[r.scalar(op, 0, number_types.Uint32Flags)]
        inputs = r.numeric_vector(op, 1, np.int32).tolist()
        outputs = r.numeric_vector(op, 2, np.int32).tolist()
        options = self._options(kind, r.subtable(op, 4))
        custom = bytes(r.numeric_vector(op, 5, np.uint8).tobytes())
        return TFLiteOperator(kind, inputs, outputs, options, custom)

    def _options(self, kind: str, t: Table | None) -> dict[str, object]:
        if t is None:
            return {}
        r, i8, i32 = self._r, number_types.Int8Flags, number_types.Int32Flags
        if kind == "CONV_2D":
            return {
                "padding": PADDINGS[r.scalar(t, 0, i8)],
                "strides": (r.scalar(t, 2, i32), r.scalar(t, 1, i32)),
                "activation": FUSED_ACTIVATIONS[r.scalar(t, 3, i8)],
                "dilation": (r.scalar(t, 5, i32, 1), r.scalar(t, 4, i32, 1)),
            }
        if kind == "DEPTHWISE_CONV_2D":
            return {
                "padding": PADDINGS[r.scalar(t, 0, i8)],
                "strides": (r.scalar(t, 2, i32), r.scalar(t, 1, i32)),
                "depth_multiplier": r.scalar(t, 3, i32),
                "activation": FUSED_ACTIVATIONS[r.scalar(t, 4, i8)],
                "dilation": (r.scalar(t, 6, i32, 1), r.scalar(t, 5, i32, 1)),
            }
        if kind == "AVERAGE_POOL_2D":
            return {
                "padding": PADDINGS[r.scalar(t, 0, i8)],
                "strides": (r.scalar(t, 2, i32), r.scalar(t, 1, i32)),
                "pool_size": (r.scalar(t, 4, i32), r.scalar(t, 3, i32)),
                "activation": FUSED_ACTIVATIONS[r.scalar(t, 5, i8)],
            }
        if kind in ("ADD", "MUL"):
            return {"activation": FUSED_ACTIVATIONS[r.scalar(t, 0, i8)]}
        if kind == "RESIZE_BILINEAR":
            return {
                "align_corners": bool(r.scalar(t, 2, number_types.BoolFlags)),
                "half_pixel_centers": bool(r.scalar(t, 3, number_types.BoolFlags)),
            }
        return {}

    def constant(self, index: int) -> np.ndarray:
        """A constant tensor's value, shaped; raises if the tensor has no data (an activation)."""
        tensor = self.tensors[index]
        data = self._r.numeric_vector(self._buffers[tensor.buffer], 0, np.uint8)
        if data.size == 0:
            raise ModelError(f"tensor {tensor.name!r} holds no constant data")
        return np.frombuffer(data.tobytes(), dtype=tensor.dtype).reshape(tensor.shape)

    def has_data(self, index: int) -> bool:
        tensor = self.tensors[index]
        return self._r.vector_len(self._buffers[tensor.buffer], 0) > 0
