"""Export a trained quality network to ONNX, with our own small ONNX writer.

``torch.onnx.export`` needs the ``onnx`` package (and its new exporter also ``onnxscript``); neither is a
dependency of fiqa-bench, so the graph is written here: :func:`torch.fx.symbolic_trace` lists the network's
operations, each is mapped onto its ONNX operator (opset 17), and the ``ModelProto`` is serialised with a
minimal protobuf encoder (field numbers from ``onnx/onnx.proto``). Only the layers our networks use are
supported (Conv2d, BatchNorm2d, ReLU, ReLU6, MaxPool2d, AdaptiveAvgPool2d(1), Linear, add, flatten, sigmoid);
anything else raises, so an unsupported network cannot be exported silently wrong. onnxruntime then checks the
result against torch (:func:`verify`).

The file: input ``input`` float32 (N, 3, S, S) (normalised RGB, see :data:`NORMALISATION`), dynamic batch;
output ``quality`` float32 (N, 1) in (0, 1). Metadata properties (``fiqa_bench.*``): net name, input size,
colour, layout, normalisation, and the training card as JSON.
"""

from __future__ import annotations

import json
import operator
import os
import struct
from pathlib import Path
from typing import Any, Mapping

import numpy as np

#: How uint8 RGB pixels become network input (same in training and in :mod:`fiqa_bench.methods.tinyfq`).
NORMALISATION = "(x - 127.5) / 128"
INPUT_NAME = "input"
OUTPUT_NAME = "quality"
OPSET = 17
IR_VERSION = 8
META_PREFIX = "fiqa_bench."
_MEAN, _STD = 127.5, 128.0


def preprocess(images: np.ndarray) -> np.ndarray:
    """uint8 RGB crops (N, S, S, 3) -> float32 (N, 3, S, S), :data:`NORMALISATION` (training and inference)."""
    x = (np.asarray(images, dtype=np.float32) - _MEAN) / _STD
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))

# ------------------------------------------------------------------------------------------------ protobuf wire format
_VARINT, _LEN, _FIXED32 = 0, 2, 5


def _varint(n: int) -> bytes:
    if n < 0:
        n += 1 << 64  # int64 two's complement, as protobuf encodes negative int64
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _key(field: int, wire: int) -> bytes:
    return _varint(field << 3 | wire)


def _int(field: int, n: int) -> bytes:
    return _key(field, _VARINT) + _varint(int(n))


def _float(field: int, x: float) -> bytes:
    return _key(field, _FIXED32) + struct.pack("<f", float(x))


def _bytes(field: int, data: bytes | str) -> bytes:
    if isinstance(data, str):
        data = data.encode("utf-8")
    return _key(field, _LEN) + _varint(len(data)) + data


# ------------------------------------------------------------------------------------------------ ONNX messages
_FLOAT, _INT64 = 1, 7  # TensorProto.DataType
_ATTR_FLOAT, _ATTR_INT, _ATTR_INTS = 1, 2, 7  # AttributeProto.AttributeType


def _tensor(name: str, array: np.ndarray) -> bytes:
    array = np.ascontiguousarray(array)
    if array.dtype == np.float32:
        dtype = _FLOAT
    elif array.dtype == np.int64:
        dtype = _INT64
    else:
        raise TypeError(f"unsupported initializer dtype {array.dtype}")
    dims = b"".join(_int(1, d) for d in array.shape)
    return dims + _int(2, dtype) + _bytes(8, name) + _bytes(9, array.astype(array.dtype.newbyteorder("<")).tobytes())


def _attribute(name: str, value: Any) -> bytes:
    if isinstance(value, float):
        return _bytes(1, name) + _int(20, _ATTR_FLOAT) + _float(2, value)
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return _bytes(1, name) + _int(20, _ATTR_INT) + _int(3, int(value))
    if isinstance(value, (list, tuple)):
        return _bytes(1, name) + _int(20, _ATTR_INTS) + b"".join(_int(8, int(v)) for v in value)
    raise TypeError(f"unsupported attribute {name}={value!r}")


def _node(op: str, inputs: list[str], outputs: list[str], name: str, **attrs: Any) -> bytes:
    body = b"".join(_bytes(1, i) for i in inputs) + b"".join(_bytes(2, o) for o in outputs)
    body += _bytes(3, name) + _bytes(4, op)
    body += b"".join(_bytes(5, _attribute(k, v)) for k, v in attrs.items())
    return body


def _value_info(name: str, dims: list[int | str]) -> bytes:
    shape = b"".join(_bytes(1, _bytes(2, d) if isinstance(d, str) else _int(1, d)) for d in dims)
    tensor_type = _int(1, _FLOAT) + _bytes(2, shape)
    return _bytes(1, name) + _bytes(2, _bytes(1, tensor_type))


def _model(nodes: list[bytes], initializers: list[bytes], inputs: list[bytes], outputs: list[bytes],
           metadata: Mapping[str, str], producer_version: str) -> bytes:
    graph = b"".join(_bytes(1, n) for n in nodes) + _bytes(2, "quality_net")
    graph += b"".join(_bytes(5, t) for t in initializers)
    graph += b"".join(_bytes(11, v) for v in inputs) + b"".join(_bytes(12, v) for v in outputs)
    model = _int(1, IR_VERSION) + _bytes(2, "fiqa-bench") + _bytes(3, producer_version)
    model += _bytes(7, graph) + _bytes(8, _bytes(1, "") + _int(2, OPSET))
    model += b"".join(_bytes(14, _bytes(1, k) + _bytes(2, v)) for k, v in metadata.items())
    return model


# ------------------------------------------------------------------------------------------------ torch -> ONNX graph
def _numpy(t) -> np.ndarray:
    return t.detach().cpu().numpy().astype(np.float32)


def _pair(v) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[1]))


def _convert(model) -> tuple[list[bytes], list[bytes]]:
    """(nodes, initializers) of ``model`` in eval mode; raises ``TypeError`` on an unsupported operation."""
    from . import require_torch

    torch = require_torch()
    nn = torch.nn
    gm = torch.fx.symbolic_trace(model)
    modules = dict(gm.named_modules())
    nodes: list[bytes] = []
    inits: list[bytes] = []
    names: dict[Any, str] = {}
    out_node = next(n for n in gm.graph.nodes if n.op == "output")
    final = out_node.args[0]
    if not hasattr(final, "op"):
        raise TypeError("the network must return a single tensor")

    def value(n) -> str:
        return names[n]

    def init(name: str, array: np.ndarray) -> str:
        inits.append(_tensor(name, array))
        return name

    for i, n in enumerate(gm.graph.nodes):
        if n.op == "output":
            continue
        out = OUTPUT_NAME if n is final else f"v{i}_{n.name}"
        if n.op == "placeholder":
            names[n] = INPUT_NAME
            continue
        names[n] = out
        if n.op == "call_module":
            m = modules[n.target]
            x = value(n.args[0])
            t = n.target
            if isinstance(m, nn.Conv2d):
                if m.padding_mode != "zeros" or isinstance(m.padding, str):
                    raise TypeError(f"{t}: only explicit zero padding is supported")
                ph, pw = _pair(m.padding)
                ins = [x, init(f"{t}.weight", _numpy(m.weight))]
                if m.bias is not None:
                    ins.append(init(f"{t}.bias", _numpy(m.bias)))
                nodes.append(_node("Conv", ins, [out], t, kernel_shape=list(_pair(m.kernel_size)),
                                   strides=list(_pair(m.stride)), pads=[ph, pw, ph, pw],
                                   dilations=list(_pair(m.dilation)), group=int(m.groups)))
            elif isinstance(m, nn.BatchNorm2d):
                if m.running_mean is None or not m.affine:
                    raise TypeError(f"{t}: BatchNorm2d needs running statistics and affine parameters")
                ins = [x, init(f"{t}.weight", _numpy(m.weight)), init(f"{t}.bias", _numpy(m.bias)),
                       init(f"{t}.running_mean", _numpy(m.running_mean)),
                       init(f"{t}.running_var", _numpy(m.running_var))]
                nodes.append(_node("BatchNormalization", ins, [out], t, epsilon=float(m.eps)))
            elif isinstance(m, nn.ReLU6):
                lo = init(f"{t}.min", np.array(0.0, np.float32))
                hi = init(f"{t}.max", np.array(6.0, np.float32))
                nodes.append(_node("Clip", [x, lo, hi], [out], t))
            elif isinstance(m, nn.ReLU):
                nodes.append(_node("Relu", [x], [out], t))
            elif isinstance(m, nn.MaxPool2d):
                if m.ceil_mode or _pair(m.dilation) != (1, 1):
                    raise TypeError(f"{t}: MaxPool2d with ceil_mode or dilation is not supported")
                ph, pw = _pair(m.padding)
                nodes.append(_node("MaxPool", [x], [out], t, kernel_shape=list(_pair(m.kernel_size)),
                                   strides=list(_pair(m.stride if m.stride is not None else m.kernel_size)),
                                   pads=[ph, pw, ph, pw]))
            elif isinstance(m, nn.AdaptiveAvgPool2d):
                if _pair(m.output_size) != (1, 1):
                    raise TypeError(f"{t}: only AdaptiveAvgPool2d(1) is supported")
                nodes.append(_node("GlobalAveragePool", [x], [out], t))
            elif isinstance(m, nn.Linear):
                ins = [x, init(f"{t}.weight", _numpy(m.weight))]
                if m.bias is not None:
                    ins.append(init(f"{t}.bias", _numpy(m.bias)))
                nodes.append(_node("Gemm", ins, [out], t, transB=1))
            else:
                raise TypeError(f"{t}: cannot export layer {type(m).__name__}")
        elif n.op == "call_function":
            if n.target in (operator.add, torch.add):
                a, b = n.args[:2]
                if not (hasattr(a, "op") and hasattr(b, "op")) or n.kwargs:
                    raise TypeError(f"{n.name}: only tensor + tensor additions are supported")
                nodes.append(_node("Add", [value(a), value(b)], [out], n.name))
            elif n.target is torch.flatten:
                start = n.args[1] if len(n.args) > 1 else n.kwargs.get("start_dim", 0)
                end = n.args[2] if len(n.args) > 2 else n.kwargs.get("end_dim", -1)
                if start != 1 or end != -1:
                    raise TypeError(f"{n.name}: only flatten(x, 1) is supported")
                nodes.append(_node("Flatten", [value(n.args[0])], [out], n.name, axis=1))
            elif n.target is torch.sigmoid:
                nodes.append(_node("Sigmoid", [value(n.args[0])], [out], n.name))
            else:
                raise TypeError(f"{n.name}: cannot export function {getattr(n.target, '__name__', n.target)}")
        else:
            raise TypeError(f"{n.name}: cannot export {n.op} {n.target}")
    return nodes, inits


def onnx_bytes(model, input_size: int, metadata: Mapping[str, str] | None = None) -> bytes:
    """The serialised ONNX model of ``model`` (in eval mode) for (N, 3, input_size, input_size) input."""
    import torch

    model = model.eval()
    nodes, inits = _convert(model)
    inputs = [_value_info(INPUT_NAME, ["N", 3, int(input_size), int(input_size)])]
    outputs = [_value_info(OUTPUT_NAME, ["N", 1])]
    return _model(nodes, inits, inputs, outputs, dict(metadata or {}), f"torch {torch.__version__}")


def json_safe(obj: Any) -> Any:
    """``obj`` with NaN/inf floats as None, numpy scalars/arrays as Python values, other objects as strings."""
    if isinstance(obj, Mapping):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, np.ndarray)):
        return [json_safe(v) for v in (obj.tolist() if isinstance(obj, np.ndarray) else obj)]
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if np.isfinite(obj) else None
    if obj is None or isinstance(obj, str):
        return obj
    return str(obj)


def export_onnx(model, path: str | os.PathLike, *, net: str, input_size: int,
                card: Mapping[str, Any] | None = None) -> Path:
    """Write ``model`` to ``path`` atomically, with metadata, and check it against torch with onnxruntime.

    ``card``: the training card (command, data, backbone, seed, validation numbers...), stored as JSON in the
    ``fiqa_bench.training_card`` property.
    """
    from ..atomic import write_bytes

    metadata = {
        META_PREFIX + "net": net,
        META_PREFIX + "input_size": str(int(input_size)),
        META_PREFIX + "colour": "RGB",
        META_PREFIX + "layout": "NCHW",
        META_PREFIX + "normalisation": NORMALISATION,
        META_PREFIX + "output": "sigmoid quality in (0, 1), shape (N, 1)",
        META_PREFIX + "training_card": json.dumps(json_safe(dict(card or {})), sort_keys=True, allow_nan=False),
    }
    data = onnx_bytes(model, input_size, metadata)
    path = Path(path)
    write_bytes(path, data)
    verify(model, path, input_size)
    return path


def read_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The ``fiqa_bench.*`` metadata properties of an ONNX file (prefix removed), read with onnxruntime."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    session = ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
    props = session.get_modelmeta().custom_metadata_map
    return {k[len(META_PREFIX):]: v for k, v in props.items() if k.startswith(META_PREFIX)}


def verify(model, path: str | os.PathLike, input_size: int, n: int = 4, atol: float = 1e-5, seed: int = 0) -> float:
    """Max |onnxruntime - torch| on ``n`` random inputs; raises ``AssertionError`` when above ``atol``."""
    import onnxruntime as ort
    import torch

    x = np.random.default_rng(seed).normal(0.0, 1.0, (n, 3, input_size, input_size)).astype(np.float32)
    model = model.eval()
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    opts.intra_op_num_threads = 1
    session = ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
    got = session.run([OUTPUT_NAME], {INPUT_NAME: x})[0]
    if got.shape != expected.shape:
        raise AssertionError(f"{path}: ONNX output shape {got.shape} != torch {expected.shape}")
    diff = float(np.abs(got - expected).max())
    if not diff <= atol:
        raise AssertionError(f"{path}: ONNX output differs from torch by {diff:.3g} (> {atol:g})")
    return diff


def save_trained(result: Mapping[str, Any], onnx_path: str | os.PathLike, card: Mapping[str, Any]) -> Path:
    """Export a :func:`fiqa_bench.training.train.train` result to ``onnx_path`` and write ``card`` beside it
    as JSON (same name, ``.json``): the bundled ``methods/weights/tinyfq.onnx`` + ``tinyfq.json`` pair."""
    from ..atomic import write_json
    from ..download import file_sha256

    path = export_onnx(result["model"], onnx_path, net=result["net"], input_size=result["input_size"], card=card)
    write_json(path.with_suffix(".json"), {**json_safe(dict(card)), "onnx": path.name,
                                           "onnx_sha256": file_sha256(path), "onnx_bytes": path.stat().st_size})
    return path
