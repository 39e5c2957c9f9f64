"""Write a tiny real ONNX model (Flatten -> MatMul) without the `onnx` package, by encoding its protobuf.

Used to test the ONNX backbone's plumbing (batching, fixed vs dynamic batch, flip, normalisation, layout)
against an exact numpy reference: the model computes ``flatten(x) @ W``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _varint(n: int) -> bytes:
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
    return _varint((field << 3) | wire)


def _int(field: int, value: int) -> bytes:
    return _key(field, 0) + _varint(value)


def _bytes(field: int, payload: bytes | str) -> bytes:
    if isinstance(payload, str):
        payload = payload.encode()
    return _key(field, 2) + _varint(len(payload)) + payload


FLOAT = 1  # TensorProto.FLOAT


def _value_info(name: str, dims: list[int | str]) -> bytes:
    shape = b"".join(_bytes(1, _bytes(2, d) if isinstance(d, str) else _int(1, d)) for d in dims)
    tensor_type = _int(1, FLOAT) + _bytes(2, shape)
    return _bytes(1, name) + _bytes(2, _bytes(1, tensor_type))


def _node(op: str, inputs: list[str], outputs: list[str], attrs: bytes = b"") -> bytes:
    return b"".join(_bytes(1, i) for i in inputs) + b"".join(_bytes(2, o) for o in outputs) + _bytes(4, op) + attrs


def write_linear_model(path: Path, weights: np.ndarray, batch: int | str = "N", size: int = 112,
                       nhwc: bool = False) -> Path:
    """ONNX model: input 'x' (batch, 3, size, size) (or NHWC), output 'y' = flatten(x) @ weights."""
    w = np.ascontiguousarray(weights, dtype="<f4")
    assert w.shape[0] == 3 * size * size
    tensor = b"".join(_int(1, d) for d in w.shape) + _int(2, FLOAT) + _bytes(8, "W") + _bytes(9, w.tobytes())
    axis = _bytes(5, _bytes(1, "axis") + _int(3, 1) + _int(20, 2))  # AttributeProto INT
    graph = (
        _bytes(1, _node("Flatten", ["x"], ["flat"], axis))
        + _bytes(1, _node("MatMul", ["flat", "W"], ["y"]))
        + _bytes(2, "tiny")
        + _bytes(5, tensor)
        + _bytes(11, _value_info("x", [batch, size, size, 3] if nhwc else [batch, 3, size, size]))
        + _bytes(12, _value_info("y", [batch, int(w.shape[1])]))
    )
    model = _int(1, 8) + _bytes(2, "fiqa-bench-tests") + _bytes(7, graph) + _bytes(8, _bytes(1, "") + _int(2, 13))
    path.write_bytes(model)
    return path


def reference(images_uint8: np.ndarray, weights: np.ndarray, mean, std, nhwc: bool = False) -> np.ndarray:
    """What the model must output for aligned uint8 crops (N, H, W, 3) given per-channel mean/std."""
    x = (images_uint8.astype(np.float64) - np.asarray(mean)) / np.asarray(std)
    if not nhwc:
        x = x.transpose(0, 3, 1, 2)
    return (x.reshape(len(x), -1) @ weights.astype(np.float64)).astype(np.float32)


