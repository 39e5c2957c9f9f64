"""Parameters and multiply-adds of an ONNX model, for the cost tables, read with the ``onnx`` package.

``onnx`` (the ``costs`` extra: ``pip install 'fiqa-bench[costs]'``; also in ``train`` and ``test``) parses the file
and infers every intermediate shape (:func:`onnx.shape_inference.infer_shapes` with data propagation) at a fixed
per-image input shape (batch 1). Graphs whose shapes are computed at run time beyond what inference propagates
(SCRFD resizes by the shape of another tensor) get their shapes from one onnxruntime run on a zero input of that
shape instead; ``shapes_from`` says which.

Counts (:func:`onnx_costs`):

* ``initializer_values``: every number stored in the file's initializers (what the weights occupy), i.e.
  the parameters plus BatchNormalization running statistics and operator constants;
* ``parameters``: the learnable ones, the way ``sum(p.numel() for p in model.parameters())`` counts them in
  PyTorch: float initializers, minus BatchNormalization running mean and variance (inputs 3 and 4) and minus
  constant operands (Clip bounds, Reshape shapes, Pad values and the like: inputs of an operator that are not
  weights), looking through ``Cast`` (float16 initialisers cast to float32 count as the weights they are). For a
  network exported by :mod:`fiqa_bench.training.export` it equals
  :func:`fiqa_bench.training.nets.count_parameters` of the torch network;
* ``macs``: multiply-adds per image, with the convention of :mod:`fiqa_bench.training.flops` (Conv: output
  elements x input channels / groups x kernel area; Gemm / MatMul: M x K x N); element-wise operators, BN,
  pooling and activations are not multiply-adds. ``norm_outputs``: elements produced by BatchNormalization
  (``macs + norm_outputs`` is the convention that counts one operation per BN output). When a shape cannot be
  had at all, ``macs`` is ``None`` and ``macs_unavailable`` says why.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

#: Inputs of an operator that are constants of the operator rather than learned weights.
_CONSTANT_INPUTS = {
    "BatchNormalization": (3, 4),
    "Clip": (1, 2),
    "Reshape": (1,),
    "Pad": (1, 2),
    "Resize": (1, 2, 3),
    "Slice": (1, 2, 3, 4),
    "Squeeze": (1,),
    "Unsqueeze": (1,),
    "Expand": (1,),
    "Tile": (1,),
    "ReduceMean": (1,),
    "ReduceSum": (1,),
    "Gather": (1,),
    "Upsample": (1,),
    "ConstantOfShape": (0,),
}
#: Operators that pass a tensor through unchanged in value (followed back to the initializer they read).
_PASS_THROUGH = ("Cast", "Identity")


class OnnxReadError(ValueError):
    """The file is not an ONNX model that can be read; the message names the file."""


def _onnx():
    try:
        import onnx
    except ImportError as exc:
        from fiqa_bench.errors import MissingDependencyError

        raise MissingDependencyError(
            "counting ONNX costs needs the onnx package: pip install 'fiqa-bench[costs]'"
        ) from exc
    return onnx


def read_model(path: str | os.PathLike):
    """The ``onnx.ModelProto`` of a file (weights included), or :class:`OnnxReadError` naming it."""
    onnx = _onnx()
    path = Path(path)
    try:
        model = onnx.load(str(path))
    except OSError as exc:
        raise OnnxReadError(f"{path}: cannot read ({exc})") from exc
    except Exception as exc:  # noqa: BLE001 - protobuf's DecodeError and friends: the file is not ONNX
        raise OnnxReadError(f"{path}: not an ONNX model ({type(exc).__name__}: {exc})") from exc
    if not model.graph.node:
        raise OnnxReadError(f"{path}: the ONNX graph has no nodes")
    return model


def read_graph(path: str | os.PathLike):
    """The main ``onnx.GraphProto`` of a file."""
    return read_model(path).graph


def _graph_inputs(graph) -> list:
    """The graph inputs that are not initializers (older files list initializers as inputs too)."""
    inits = {t.name for t in graph.initializer}
    return [i for i in graph.input if i.name not in inits]


def count_parameters(graph) -> tuple[int, int]:
    """(initializer_values, parameters) of an ``onnx.GraphProto``; see the module docstring."""
    onnx = _onnx()
    sizes = {t.name: int(math.prod(t.dims)) for t in graph.initializer}
    floats = {onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.DOUBLE, onnx.TensorProto.BFLOAT16}
    producer = {o: n for n in graph.node for o in n.output}

    def source(name: str) -> str:
        while name not in sizes and name in producer and producer[name].op_type in _PASS_THROUGH:
            name = producer[name].input[0]
        return name

    constant = {
        source(node.input[i])
        for node in graph.node
        for i in _CONSTANT_INPUTS.get(node.op_type, ())
        if i < len(node.input) and node.input[i]
    }
    params = sum(sizes[t.name] for t in graph.initializer if t.name not in constant and t.data_type in floats)
    return sum(sizes.values()), params


def _fixed_inputs(model, input_shape: Mapping[str, tuple[int, ...]]):
    """A copy of ``model`` whose graph inputs have the given static shapes."""
    fixed = type(model)()
    fixed.CopyFrom(model)
    for inp in _graph_inputs(fixed.graph):
        if inp.name not in input_shape:
            raise ValueError(f"no shape given for graph input {inp.name!r}")
        shape = inp.type.tensor_type.shape
        shape.ClearField("dim")
        for d in input_shape[inp.name]:
            shape.dim.add().dim_value = int(d)
    return fixed


def _static_shapes(model) -> dict[str, tuple[int, ...]]:
    """{value: shape} from onnx shape inference, static shapes only."""
    onnx = _onnx()
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=False, data_prop=True)
    g = inferred.graph
    shapes = {t.name: tuple(int(d) for d in t.dims) for t in g.initializer}
    for vi in list(g.input) + list(g.value_info) + list(g.output):
        tt = vi.type.tensor_type
        if tt.HasField("shape") and all(d.HasField("dim_value") for d in tt.shape.dim):
            shapes[vi.name] = tuple(int(d.dim_value) for d in tt.shape.dim)
    return shapes


def _runtime_shapes(model, names: list[str], input_shape: Mapping[str, tuple[int, ...]]) -> dict:
    """{value: shape} of ``names`` from one onnxruntime run of ``model`` on zero inputs of ``input_shape``."""
    import numpy as np
    import onnxruntime as ort

    onnx = _onnx()
    probe = type(model)()
    probe.CopyFrom(model)
    have = {o.name for o in probe.graph.output}
    probe.graph.output.extend(onnx.helper.make_empty_tensor_value_info(n) for n in names if n not in have)
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # keep every intermediate value
    session = ort.InferenceSession(probe.SerializeToString(), sess_options=opts, providers=["CPUExecutionProvider"])
    feeds = {}
    for inp in _graph_inputs(probe.graph):
        dtype = onnx.helper.tensor_dtype_to_np_dtype(inp.type.tensor_type.elem_type)
        feeds[inp.name] = np.zeros(input_shape[inp.name], dtype)
    outputs = [o.name for o in session.get_outputs()]
    return {n: tuple(int(d) for d in v.shape) for n, v in zip(outputs, session.run(outputs, feeds))}


def count_macs(model, input_shape: Mapping[str, tuple[int, ...]] | tuple[int, ...]) -> tuple[int, int, str]:
    """(macs, norm_outputs, shapes_from) per forward pass of an ``onnx.ModelProto`` at ``input_shape`` (batch 1
    for per-image numbers): a shape for the single graph input, or ``{input name: shape}``. Raises
    ``ValueError`` naming the node when a shape cannot be had."""
    inputs = _graph_inputs(model.graph)
    if not isinstance(input_shape, Mapping):
        if len(inputs) != 1:
            raise ValueError(f"the graph has {len(inputs)} inputs; give a shape per input name")
        input_shape = {inputs[0].name: tuple(input_shape)}
    fixed = _fixed_inputs(model, input_shape)
    shapes = _static_shapes(fixed)
    counted = [n for n in fixed.graph.node if n.op_type in ("Conv", "Gemm", "MatMul", "BatchNormalization")]
    needed = sorted({v for n in counted for v in (*n.input[:2], n.output[0]) if v and v not in shapes})
    shapes_from = "onnx shape inference"
    if needed:
        try:
            shapes.update(_runtime_shapes(fixed, needed, input_shape))
        except Exception as exc:  # noqa: BLE001 - onnxruntime's own errors name the node
            raise ValueError(
                f"shapes of {needed[0]!r} and {len(needed) - 1} more values are not static and "
                f"onnxruntime could not run the graph ({type(exc).__name__}: {exc})"
            ) from None
        shapes_from = "onnx shape inference + one onnxruntime run (shapes computed at run time)"
    macs = norm = 0
    for node in counted:
        try:
            out = shapes[node.output[0]]
            a = shapes[node.input[0]]
            attrs = {at.name: at.i for at in node.attribute if at.type == at.INT}
            if node.op_type == "Conv":
                w = shapes[node.input[1]]
                macs += int(math.prod(out)) * int(w[1]) * int(math.prod(w[2:]))
            elif node.op_type == "Gemm":
                k = a[0] if attrs.get("transA") else a[1]
                macs += int(math.prod(out)) * int(k)
            elif node.op_type == "MatMul":
                macs += int(math.prod(out)) * int(a[-1])
            else:
                norm += int(math.prod(out))
        except KeyError as exc:
            raise ValueError(f"{node.op_type} node {node.name!r}: value {exc.args[0]!r} has no known shape") from None
    return macs, norm, shapes_from


def onnx_costs(path: str | os.PathLike, input_shape: tuple[int, ...] | dict | None = None) -> dict:
    """Parameters and per-image multiply-adds of an ONNX model (see the module docstring).

    ``input_shape``: the per-image input shape with batch 1, e.g. ``(1, 3, 64, 64)``; default: the graph input's
    declared shape with a symbolic batch set to 1 (other symbolic dimensions, e.g. a detector's height and
    width, must be given).
    """
    model = read_model(path)
    values, params = count_parameters(model.graph)
    out: dict[str, Any] = {
        "file": str(path),
        "file_bytes": Path(path).stat().st_size,
        "initializer_values": values,
        "parameters": params,
        "ops": sorted({n.op_type for n in model.graph.node}),
        "input_shape": None,
    }
    try:
        if input_shape is None:
            inputs = _graph_inputs(model.graph)
            if len(inputs) != 1:
                raise ValueError(f"{len(inputs)} graph inputs; pass input_shape")
            dims = inputs[0].type.tensor_type.shape.dim
            if any(not d.HasField("dim_value") for d in list(dims)[1:]):
                raise ValueError(
                    f"input {inputs[0].name!r} has symbolic dimensions "
                    f"{[d.dim_param or '?' for d in dims]}; pass input_shape"
                )
            input_shape = {inputs[0].name: tuple([1] + [int(d.dim_value) for d in list(dims)[1:]])}
        macs, norm, shapes_from = count_macs(model, input_shape)
        shape = next(iter(input_shape.values())) if isinstance(input_shape, Mapping) else input_shape
        out.update(
            macs=macs,
            norm_outputs=norm,
            macs_unavailable=None,
            shapes_from=shapes_from,
            input_shape=[int(d) for d in shape],
        )
    except ValueError as exc:
        out.update(macs=None, norm_outputs=None, macs_unavailable=str(exc), shapes_from=None)
    return out
