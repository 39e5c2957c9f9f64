"""Write a tiny real ONNX model (Flatten -> MatMul) with ``onnx.helper``.

Used to test the ONNX backbone's plumbing (batching, fixed vs dynamic batch, flip, normalisation, layout)
against an exact numpy reference: the model computes ``flatten(x) @ W``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def write_linear_model(
    path: Path, weights: np.ndarray, batch: int | str = "N", size: int = 112, nhwc: bool = False
) -> Path:
    """ONNX model: input 'x' (batch, 3, size, size) (or NHWC), output 'y' = flatten(x) @ weights."""
    from onnx import TensorProto, helper, numpy_helper, save

    w = np.ascontiguousarray(weights, dtype=np.float32)
    assert w.shape[0] == 3 * size * size
    x_dims = [batch, size, size, 3] if nhwc else [batch, 3, size, size]
    graph = helper.make_graph(
        [
            helper.make_node("Flatten", ["x"], ["flat"], "flatten", axis=1),
            helper.make_node("MatMul", ["flat", "W"], ["y"], "matmul"),
        ],
        "linear",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_dims)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, int(w.shape[1])])],
        initializer=[numpy_helper.from_array(w, "W")],
    )
    model = helper.make_model(graph, producer_name="tests", opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # readable by every onnxruntime the project supports
    save(model, str(path))
    return path


def reference(images_uint8: np.ndarray, weights: np.ndarray, mean, std, nhwc: bool = False) -> np.ndarray:
    """What the model must output for aligned uint8 crops (N, H, W, 3) given per-channel mean/std."""
    x = (images_uint8.astype(np.float64) - np.asarray(mean)) / np.asarray(std)
    if not nhwc:
        x = x.transpose(0, 3, 1, 2)
    return (x.reshape(len(x), -1) @ weights.astype(np.float64)).astype(np.float32)
