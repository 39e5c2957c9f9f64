"""Write a tiny real ONNX model (Flatten -> MatMul) without the `onnx` package, with the suite's protobuf encoder.

Used to test the ONNX backbone's plumbing (batching, fixed vs dynamic batch, flip, normalisation, layout)
against an exact numpy reference: the model computes ``flatten(x) @ W``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

# The protobuf encoders of the suite's own ONNX writer (torch-free at import).
from fiqa_bench.training.export import _model, _node, _tensor, _value_info


def write_linear_model(path: Path, weights: np.ndarray, batch: int | str = "N", size: int = 112,
                       nhwc: bool = False) -> Path:
    """ONNX model: input 'x' (batch, 3, size, size) (or NHWC), output 'y' = flatten(x) @ weights."""
    w = np.ascontiguousarray(weights, dtype=np.float32)
    assert w.shape[0] == 3 * size * size
    nodes = [_node("Flatten", ["x"], ["flat"], "flatten", axis=1), _node("MatMul", ["flat", "W"], ["y"], "matmul")]
    x_dims = [batch, size, size, 3] if nhwc else [batch, 3, size, size]
    model = _model(nodes, [_tensor("W", w)], [_value_info("x", x_dims)], [_value_info("y", [batch, int(w.shape[1])])],
                   {}, "tests")
    path.write_bytes(model)
    return path


def reference(images_uint8: np.ndarray, weights: np.ndarray, mean, std, nhwc: bool = False) -> np.ndarray:
    """What the model must output for aligned uint8 crops (N, H, W, 3) given per-channel mean/std."""
    x = (images_uint8.astype(np.float64) - np.asarray(mean)) / np.asarray(std)
    if not nhwc:
        x = x.transpose(0, 3, 1, 2)
    return (x.reshape(len(x), -1) @ weights.astype(np.float64)).astype(np.float32)


