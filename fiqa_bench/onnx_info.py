"""Read an ONNX file's graph without the ``onnx`` package: parameters and multiply-adds, for cost tables.

The ``onnx`` package is not a dependency of fiqa-bench, so this module decodes the few protobuf messages it
needs (``ModelProto.graph`` -> ``GraphProto`` nodes, initializers, inputs; field numbers from
``onnx/onnx.proto``) with a small wire-format reader, then walks the graph once with per-image shapes
(batch 1) to count multiply-adds.

Counts (:func:`onnx_costs`):

* ``initializer_values``: every number stored in the file's initializers (what the weights occupy), i.e.
  the parameters plus BatchNormalization running statistics and operator constants;
* ``parameters``: the learnable ones, the way ``sum(p.numel() for p in model.parameters())`` counts them in
  PyTorch: float initializers, minus BatchNormalization running mean and variance (inputs 3 and 4) and minus
  constant operands (Clip bounds, Reshape shapes, Pad values and the like: inputs of an operator that are not
  weights). For a network exported by :mod:`fiqa_bench.training.export` it equals
  :func:`fiqa_bench.training.nets.count_parameters` of the torch network;
* ``macs``: multiply-adds per image, with the convention of :mod:`fiqa_bench.training.flops` (Conv: output
  elements x input channels / groups x kernel area; Gemm / MatMul: M x K x N); element-wise operators, BN,
  pooling and activations are not multiply-adds. ``norm_outputs``: elements produced by BatchNormalization
  (``macs + norm_outputs`` is the convention that counts one operation per BN output). When the graph holds an
  operator whose output shape this walker cannot infer (e.g. shape arithmetic with ``Shape``/``Gather``),
  ``macs`` is ``None`` and ``macs_unavailable`` says which operator.
"""

from __future__ import annotations

import math
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np

_FLOAT_TYPES = {1: np.float32, 10: np.float16, 11: np.float64, 16: None}  # 16: bfloat16 (count only)
_NP_TYPES = {1: "<f4", 2: "u1", 3: "i1", 5: "<i2", 6: "<i4", 7: "<i8", 9: "u1", 10: "<f2", 11: "<f8"}


class OnnxReadError(ValueError):
    """The file is not an ONNX model this reader understands; the message names the file."""


# ------------------------------------------------------------------------------------------------ wire format
def _varint(buf: memoryview, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise IndexError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift > 70:
            raise ValueError("varint too long")


def _signed(n: int) -> int:
    return n - (1 << 64) if n >= 1 << 63 else n


def _fields(buf: memoryview) -> Iterator[tuple[int, int, Any]]:
    """(field number, wire type, value): ints for varint/fixed, memoryviews for length-delimited."""
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            value = struct.unpack_from("<Q", buf, pos)[0]
            pos += 8
        elif wire == 2:
            length, pos = _varint(buf, pos)
            if pos + length > len(buf):
                raise IndexError("truncated field")
            value = buf[pos:pos + length]
            pos += length
        elif wire == 5:
            value = struct.unpack_from("<I", buf, pos)[0]
            pos += 4
        else:
            raise ValueError(f"unsupported wire type {wire}")
        yield number, wire, value


def _ints(wire: int, value: Any) -> list[int]:
    """A repeated int64 field's values (packed or not), signed."""
    if wire == 2:
        out, pos = [], 0
        while pos < len(value):
            v, pos = _varint(value, pos)
            out.append(_signed(v))
        return out
    return [_signed(value)]


def _text(value: memoryview) -> str:
    return bytes(value).decode("utf-8", errors="replace")


# ------------------------------------------------------------------------------------------------ messages
@dataclass
class Tensor:
    name: str
    dims: tuple[int, ...]
    data_type: int
    values: np.ndarray | None = None  # decoded for small integer/float tensors (shape operands), else None

    @property
    def size(self) -> int:
        return int(math.prod(self.dims))


@dataclass
class Node:
    op: str
    inputs: list[str]
    outputs: list[str]
    attrs: dict[str, Any] = field(default_factory=dict)
    name: str = ""


@dataclass
class Graph:
    nodes: list[Node]
    initializers: dict[str, Tensor]
    inputs: dict[str, tuple]  # graph inputs that are not initializers: name -> dims (str for symbolic)
    outputs: list[str]


def _tensor(buf: memoryview) -> Tensor:
    dims: list[int] = []
    name, dtype = "", 0
    raw = None
    typed: dict[int, list] = {}
    for number, wire, value in _fields(buf):
        if number == 1:
            dims += _ints(wire, value)
        elif number == 2:
            dtype = value
        elif number == 8:
            name = _text(value)
        elif number == 9:
            raw = value
        elif number == 4:  # float_data (packed fixed32)
            typed.setdefault(4, []).extend(
                np.frombuffer(bytes(value), "<f4").tolist() if wire == 2 else [struct.unpack("<f", struct.pack("<I", value))[0]])
        elif number in (5, 7):  # int32_data / int64_data (varints)
            typed.setdefault(number, []).extend(_ints(wire, value))
    t = Tensor(name, tuple(int(d) for d in dims), int(dtype))
    if t.size <= 64:  # only small tensors are decoded: shape operands and scalars
        if raw is not None and dtype in _NP_TYPES:
            t.values = np.frombuffer(bytes(raw), _NP_TYPES[dtype]).reshape(t.dims).copy()
        elif 7 in typed or 5 in typed:
            t.values = np.asarray(typed.get(7) or typed.get(5), np.int64).reshape(t.dims)
        elif 4 in typed:
            t.values = np.asarray(typed[4], np.float32).reshape(t.dims)
    return t


def _attribute(buf: memoryview) -> tuple[str, Any]:
    name, atype = "", 0
    vals: dict[int, Any] = {}
    for number, wire, value in _fields(buf):
        if number == 1:
            name = _text(value)
        elif number == 20:
            atype = value
        elif number == 2:
            vals[2] = struct.unpack("<f", struct.pack("<I", value))[0]
        elif number == 3:
            vals[3] = _signed(value)
        elif number == 4:
            vals[4] = _text(value)
        elif number == 5:
            vals[5] = _tensor(value)
        elif number == 7:
            vals.setdefault(7, []).extend(
                np.frombuffer(bytes(value), "<f4").tolist() if wire == 2 else [struct.unpack("<f", struct.pack("<I", value))[0]])
        elif number == 8:
            vals.setdefault(8, []).extend(_ints(wire, value))
    by_type = {1: 2, 2: 3, 3: 4, 4: 5, 6: 7, 7: 8}
    if atype in by_type:
        return name, vals.get(by_type[atype], [] if atype in (6, 7) else None)
    return name, next(iter(vals.values()), None)


def _node(buf: memoryview) -> Node:
    node = Node("", [], [])
    for number, _wire, value in _fields(buf):
        if number == 1:
            node.inputs.append(_text(value))
        elif number == 2:
            node.outputs.append(_text(value))
        elif number == 3:
            node.name = _text(value)
        elif number == 4:
            node.op = _text(value)
        elif number == 5:
            k, v = _attribute(value)
            node.attrs[k] = v
    return node


def _value_info(buf: memoryview) -> tuple[str, tuple]:
    name, dims = "", []
    for number, _w, value in _fields(buf):
        if number == 1:
            name = _text(value)
        elif number == 2:  # TypeProto
            for n2, _w2, v2 in _fields(value):
                if n2 == 1:  # tensor_type
                    for n3, _w3, v3 in _fields(v2):
                        if n3 == 2:  # shape
                            for n4, _w4, v4 in _fields(v3):
                                if n4 == 1:  # dim
                                    d: Any = "?"
                                    for n5, _w5, v5 in _fields(v4):
                                        d = _signed(v5) if n5 == 1 else _text(v5)
                                    dims.append(d)
    return name, tuple(dims)


def read_graph(path: str | os.PathLike) -> Graph:
    """The main graph of an ONNX file (nodes, initializers, real inputs, outputs)."""
    path = Path(path)
    try:
        data = memoryview(path.read_bytes())
    except OSError as exc:
        raise OnnxReadError(f"{path}: cannot read ({exc})") from exc
    try:
        graph_buf = None
        for number, wire, value in _fields(data):
            if number == 7 and wire == 2:
                graph_buf = value
        if graph_buf is None:
            raise ValueError("no graph in the file")
        nodes, inits, inputs, outputs = [], {}, {}, []
        for number, _wire, value in _fields(graph_buf):
            if number == 1:
                nodes.append(_node(value))
            elif number == 5:
                t = _tensor(value)
                inits[t.name] = t
            elif number == 11:
                name, dims = _value_info(value)
                inputs[name] = dims
            elif number == 12:
                outputs.append(_value_info(value)[0])
    except (IndexError, ValueError, struct.error) as exc:
        raise OnnxReadError(f"{path}: not an ONNX model this reader understands ({exc})") from exc
    inputs = {k: v for k, v in inputs.items() if k not in inits}
    if not nodes:
        raise OnnxReadError(f"{path}: the ONNX graph has no nodes")
    return Graph(nodes, inits, inputs, outputs)


# ------------------------------------------------------------------------------------------------ counting
#: Inputs of an operator that are constants of the operator rather than learned weights.
_CONSTANT_INPUTS = {
    "BatchNormalization": (3, 4), "Clip": (1, 2), "Reshape": (1,), "Pad": (1, 2), "Resize": (1, 2, 3),
    "Slice": (1, 2, 3, 4), "Squeeze": (1,), "Unsqueeze": (1,), "Expand": (1,), "Tile": (1,),
    "ReduceMean": (1,), "ReduceSum": (1,), "Gather": (1,), "Upsample": (1,), "ConstantOfShape": (0,),
}


def count_parameters(graph: Graph) -> tuple[int, int]:
    """(initializer_values, parameters); see the module docstring."""
    total = sum(t.size for t in graph.initializers.values())
    constant: set[str] = set()
    for node in graph.nodes:
        for i in _CONSTANT_INPUTS.get(node.op, ()):
            if i < len(node.inputs) and node.inputs[i]:
                constant.add(node.inputs[i])
    params = sum(t.size for name, t in graph.initializers.items()
                 if name not in constant and t.data_type in _FLOAT_TYPES)
    return total, params


class _Unsupported(Exception):
    pass


def _pool_out(size: int, k: int, s: int, pad: int, dil: int = 1, ceil: bool = False) -> int:
    span = size + pad - dil * (k - 1) - 1
    return (math.ceil(span / s) if ceil else span // s) + 1


def _spatial(node: Node, shape: tuple, kernel: list[int]) -> tuple[int, ...]:
    nsp = len(shape) - 2
    strides = list(node.attrs.get("strides") or [1] * nsp)
    dil = list(node.attrs.get("dilations") or [1] * nsp)
    auto = node.attrs.get("auto_pad") or "NOTSET"
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        return tuple(math.ceil(shape[2 + i] / strides[i]) for i in range(nsp))
    pads = list(node.attrs.get("pads") or [0] * (2 * nsp))
    if auto == "VALID":
        pads = [0] * (2 * nsp)
    ceil = bool(node.attrs.get("ceil_mode") or 0)
    return tuple(_pool_out(shape[2 + i], kernel[i], strides[i], pads[i] + pads[i + nsp], dil[i], ceil)
                 for i in range(nsp))


_SAME_SHAPE = {
    "Relu", "Clip", "Sigmoid", "PRelu", "LeakyRelu", "Tanh", "Identity", "Dropout", "Softplus", "HardSigmoid",
    "HardSwish", "Sqrt", "Neg", "Exp", "Log", "Abs", "Softmax", "LogSoftmax", "Elu", "Selu", "Erf", "Gelu",
    "Mish", "Cast", "Reciprocal", "Floor", "Ceil", "Round", "LpNormalization", "InstanceNormalization",
    "LayerNormalization", "BatchNormalization",
}
_BROADCAST = {"Add", "Sub", "Mul", "Div", "Max", "Min", "Pow", "Sum", "Mean", "Where", "Equal", "Greater", "Less"}


def count_macs(graph: Graph, input_shape: dict[str, tuple[int, ...]] | tuple[int, ...]) -> tuple[int, int]:
    """(macs, norm_outputs) per forward pass at ``input_shape`` (batch 1 for per-image numbers).

    ``input_shape``: a shape for the single graph input, or ``{input name: shape}``. Raises ``ValueError``
    naming the operator when a shape cannot be inferred.
    """
    if not isinstance(input_shape, dict):
        if len(graph.inputs) != 1:
            raise ValueError(f"the graph has {len(graph.inputs)} inputs; give a shape per input name")
        input_shape = {next(iter(graph.inputs)): tuple(input_shape)}
    shapes: dict[str, tuple[int, ...]] = {k: tuple(int(d) for d in v) for k, v in input_shape.items()}
    consts: dict[str, np.ndarray] = {}
    for name, t in graph.initializers.items():
        shapes[name] = t.dims
        if t.values is not None:
            consts[name] = t.values
    macs = norm = 0
    for node in graph.nodes:
        op, a = node.op, node.attrs
        try:
            ins = [shapes[i] if i else None for i in node.inputs]
        except KeyError as exc:
            raise ValueError(f"{op} node {node.name!r}: input {exc.args[0]!r} has no known shape") from None
        x = ins[0] if ins else None
        try:
            if op == "Conv":
                w = ins[1]
                out = (x[0], w[0]) + _spatial(node, x, list(w[2:]))
                macs += int(math.prod(out)) * int(w[1]) * int(math.prod(w[2:]))
            elif op in ("MaxPool", "AveragePool", "LpPool"):
                out = x[:2] + _spatial(node, x, list(a["kernel_shape"]))
            elif op in ("GlobalAveragePool", "GlobalMaxPool"):
                out = x[:2] + (1,) * (len(x) - 2)
            elif op in _SAME_SHAPE:
                out = x
                if op == "BatchNormalization":
                    norm += int(math.prod(x))
            elif op in _BROADCAST:
                out = tuple(np.broadcast_shapes(*[s for s in ins if s is not None]))
            elif op == "Flatten":
                axis = int(a.get("axis", 1))
                axis = axis + len(x) if axis < 0 else axis
                out = (int(math.prod(x[:axis])), int(math.prod(x[axis:])))
            elif op == "Reshape":
                if node.inputs[1] not in consts:
                    raise _Unsupported("Reshape with a computed shape")
                target = [int(v) for v in consts[node.inputs[1]].reshape(-1)]
                target = [x[i] if v == 0 else v for i, v in enumerate(target)]
                if -1 in target:
                    known = int(math.prod(v for v in target if v != -1))
                    target[target.index(-1)] = int(math.prod(x)) // max(known, 1)
                out = tuple(target)
            elif op == "Gemm":
                m, k = (x[1], x[0]) if a.get("transA") else (x[0], x[1])
                b = ins[1]
                n = b[0] if a.get("transB") else b[1]
                macs += int(m) * int(k) * int(n)
                out = (m, n)
            elif op == "MatMul":
                b = ins[1]
                out = tuple(np.broadcast_shapes(x[:-2], b[:-2])) + (x[-2], b[-1]) if len(b) >= 2 else x[:-1]
                macs += int(math.prod(out)) * int(x[-1])
            elif op == "Transpose":
                perm = a.get("perm") or list(range(len(x)))[::-1]
                out = tuple(x[p] for p in perm)
            elif op == "Concat":
                axis = int(a["axis"]) % len(x)
                out = x[:axis] + (sum(s[axis] for s in ins),) + x[axis + 1:]
            elif op in ("Squeeze", "Unsqueeze"):
                axes = a.get("axes")
                if axes is None and len(node.inputs) > 1:
                    if node.inputs[1] not in consts:
                        raise _Unsupported(f"{op} with computed axes")
                    axes = [int(v) for v in consts[node.inputs[1]].reshape(-1)]
                if op == "Squeeze":
                    drop = {ax % len(x) for ax in axes} if axes else {i for i, d in enumerate(x) if d == 1}
                    out = tuple(d for i, d in enumerate(x) if i not in drop)
                else:
                    rank = len(x) + len(axes)
                    put = {ax % rank for ax in axes}
                    it = iter(x)
                    out = tuple(1 if i in put else next(it) for i in range(rank))
            elif op in ("ReduceMean", "ReduceSum", "ReduceMax", "ReduceL2"):
                axes = a.get("axes")
                if axes is None and len(node.inputs) > 1:
                    axes = [int(v) for v in consts.get(node.inputs[1], np.zeros(0)).reshape(-1)]
                axes = {ax % len(x) for ax in (axes or range(len(x)))}
                keep = int(a.get("keepdims", 1))
                out = tuple((1 if i in axes else d) for i, d in enumerate(x) if keep or i not in axes)
            elif op == "Constant":
                t = a.get("value")
                if not isinstance(t, Tensor):
                    raise _Unsupported("Constant without a tensor value")
                out = t.dims
                if t.values is not None:
                    consts[node.outputs[0]] = t.values
            else:
                raise _Unsupported(op)
        except _Unsupported as exc:
            raise ValueError(f"cannot infer the output shape of {exc.args[0]} (node {node.name!r})") from None
        except (TypeError, KeyError, IndexError) as exc:
            raise ValueError(f"{op} node {node.name!r}: unexpected inputs or attributes ({exc})") from None
        for o in node.outputs[:1]:
            shapes[o] = tuple(int(d) for d in out)
        for o in node.outputs[1:]:  # e.g. BatchNormalization's optional outputs, Dropout's mask
            shapes[o] = tuple(int(d) for d in out)
    return macs, norm


def onnx_costs(path: str | os.PathLike, input_shape: tuple[int, ...] | dict | None = None) -> dict:
    """Parameters and per-image multiply-adds of an ONNX model (see the module docstring).

    ``input_shape``: the per-image input shape with batch 1, e.g. ``(1, 3, 64, 64)``; default: the graph input's
    declared shape with symbolic dimensions set to 1.
    """
    graph = read_graph(path)
    values, params = count_parameters(graph)
    if input_shape is None:
        if len(graph.inputs) != 1:
            raise OnnxReadError(f"{path}: {len(graph.inputs)} graph inputs; pass input_shape")
        name, dims = next(iter(graph.inputs.items()))
        input_shape = {name: tuple(d if isinstance(d, int) and d > 0 else 1 for d in dims)}
    out: dict[str, Any] = {"file": str(path), "file_bytes": Path(path).stat().st_size,
                           "initializer_values": values, "parameters": params,
                           "ops": sorted({n.op for n in graph.nodes})}
    try:
        macs, norm = count_macs(graph, input_shape)
        out.update(macs=macs, norm_outputs=norm, macs_unavailable=None)
    except ValueError as exc:
        out.update(macs=None, norm_outputs=None, macs_unavailable=str(exc))
    return out
