"""Export a trained quality network to ONNX with ``torch.onnx.export``, honouring
:mod:`fiqa_bench.models.onnx_contract`.

The exporter (``torch.export`` + ONNX Script, opset 18; the ``train`` extra installs ``onnx`` and ``onnxscript``)
writes the graph; then its constants are folded, the zero biases it adds to bias-free convolutions removed (ONNX
Script's own passes) and its provenance annotations dropped, leaving Conv / BatchNormalization / activation nodes
one-for-one with the torch layers. BatchNormalization is deliberately *not* folded into the convolutions, so the
file's learnable values equal the torch network's parameters (the costs tables compare both). Metadata
properties (:func:`fiqa_bench.models.onnx_contract.metadata`) are added with ``onnx``; onnxruntime then checks the file
against torch (:func:`verify`). :func:`float16_weights` shrinks a file by storing its largest weights as float16.

A card is stored without machine paths (:func:`strip_machine_paths`): a bundled file is read on other machines,
where ``/home/me/labels`` names nothing and tells who trained it where.
"""

from __future__ import annotations

import json
import logging
import os
import re
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from fiqa_bench.models.onnx_contract import INPUT_NAME, OUTPUT_NAME, metadata, preprocess, read_metadata  # noqa: F401 (re-exported)

OPSET = 18
PRODUCER = "fiqa-bench"


def _require_exporter():
    """``(torch, onnx, onnxscript)``, or a :class:`MissingDependencyError` naming the ``train`` extra."""
    from fiqa_bench.training import require_torch

    torch = require_torch()
    try:
        import onnx
        import onnxscript
    except ImportError as exc:
        from fiqa_bench.errors import MissingDependencyError

        raise MissingDependencyError(f"exporting to ONNX needs {exc.name}: pip install 'fiqa-bench[train]'") from exc
    return torch, onnx, onnxscript


def onnx_model(model, input_size: int, props: Mapping[str, str] | None = None):
    """The ``onnx.ModelProto`` of ``model`` (in eval mode) for (N, 3, input_size, input_size) input, N dynamic."""
    torch, onnx, onnxscript = _require_exporter()
    import onnx_ir
    from onnxscript.rewriter import rewrite
    from onnxscript.rewriter.rules import common as rules

    model = model.eval()
    example = torch.zeros(2, 3, int(input_size), int(input_size))
    # the exporter logs a warning per torchvision operator it cannot register (torchvision is not used here)
    quiet = logging.getLogger("torch.onnx._internal.exporter._registration")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # torch.export's own deprecation notices
            program = torch.onnx.export(
                model,
                (example,),
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_shapes=({0: torch.export.Dim("N")},),
                opset_version=OPSET,
                dynamo=True,
                optimize=False,
                verbose=False,
            )
    finally:
        quiet.setLevel(level)
    ir_model = program.model
    onnxscript.optimizer.fold_constants(ir_model)
    ir_model = rewrite(
        ir_model,
        pattern_rewrite_rules=[rules.remove_optional_bias_from_conv_rule, rules.remove_optional_bias_from_gemm_rule],
    )
    onnxscript.optimizer.remove_unused_nodes(ir_model)
    proto = onnx_ir.to_proto(ir_model)
    # the exporter annotates every node and value with its torch provenance (module paths, stack traces): debugging
    # aids that would triple the file; the graph itself is unchanged without them
    graph = proto.graph
    for item in [*graph.node, *graph.input, *graph.output, *graph.initializer]:
        item.ClearField("metadata_props")
    graph.ClearField("metadata_props")
    graph.ClearField("value_info")  # intermediate shapes: re-inferred by any reader
    proto.producer_name, proto.producer_version = PRODUCER, f"torch {torch.__version__}"
    onnx.helper.set_model_props(proto, dict(props or {}))
    onnx.checker.check_model(proto)
    return proto


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


_ABSOLUTE = re.compile(r"(?<![\w.~/-])(?:[A-Za-z]:\\|/(?!/))[^\s'\"]*")


def strip_machine_paths(
    obj: Any, *, shared: str | os.PathLike | None = None, cwd: str | os.PathLike | None = None
) -> Any:
    """``obj`` (a card: dicts, lists, strings) with every absolute path in its strings made machine-independent:
    under the shared folder (``shared``, default ``$FIQA_SHARED``) -> ``S/...``; under ``cwd`` (default the working
    directory) -> relative to it; any other -> its last component. Relative paths, as typed, are kept."""
    shared = shared if shared is not None else os.environ.get("FIQA_SHARED")
    roots = []
    if shared:
        roots.append((os.path.realpath(shared), "S"))
    roots.append((os.path.realpath(cwd if cwd is not None else os.getcwd()), ""))

    def fix(match: re.Match) -> str:
        text = match.group(0)
        real = os.path.realpath(text) if text.startswith("/") else text
        for root, name in roots:
            for candidate in dict.fromkeys((text.rstrip("/"), real)):
                if candidate == root or candidate.startswith(root.rstrip("/") + "/"):
                    rel = os.path.relpath(candidate, root)
                    return name if rel == "." and name else (f"{name}/{rel}" if name else rel)
        return re.split(r"[\\/]", text.rstrip("/\\"))[-1] or text

    if isinstance(obj, Mapping):
        return {k: strip_machine_paths(v, shared=shared, cwd=cwd) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [strip_machine_paths(v, shared=shared, cwd=cwd) for v in obj]
    if isinstance(obj, str):
        return _ABSOLUTE.sub(fix, obj)
    return obj


def export_onnx(
    model, path: str | os.PathLike, *, net: str, input_size: int, card: Mapping[str, Any] | None = None
) -> Path:
    """Write ``model`` to ``path`` atomically, with metadata, and check it against torch with onnxruntime.

    ``card``: the training card (command, data, backbone, seed, validation numbers...), stored as JSON in the
    ``fiqa_bench.training_card`` property, without machine paths (:func:`strip_machine_paths`).
    """
    from fiqa_bench.data.atomic import write_bytes

    card_json = json.dumps(strip_machine_paths(json_safe(dict(card or {}))), sort_keys=True, allow_nan=False)
    proto = onnx_model(model, input_size, metadata(net, input_size, card_json))
    path = Path(path)
    write_bytes(path, proto.SerializeToString())
    verify(model, path, input_size)
    return path


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
    as JSON (same name, ``.json``, without machine paths): the bundled ``methods/weights/tinyfq.onnx`` +
    ``tinyfq.json`` pair."""
    from fiqa_bench.data.atomic import write_json
    from fiqa_bench.data.download import file_sha256

    path = export_onnx(result["model"], onnx_path, net=result["net"], input_size=result["input_size"], card=card)
    write_json(
        path.with_suffix(".json"),
        {
            **strip_machine_paths(json_safe(dict(card))),
            "onnx": path.name,
            "onnx_sha256": file_sha256(path),
            "onnx_bytes": path.stat().st_size,
        },
    )
    return path


def float16_weights(proto, max_bytes: int, ops: tuple[str, ...] = ("Conv", "Gemm", "MatMul")):
    """A copy of ``proto`` no larger than ``max_bytes`` serialised: its largest float32 weight tensors (inputs 1 and
    up of ``ops``), largest first, stored as float16 and read through a ``Cast`` back to float32, until the file
    fits. The arithmetic stays float32 (onnxruntime folds the casts when it loads the file); only the rounding of
    the converted weights changes the output, and converting the fewest (largest) tensors changes it least. Inputs,
    outputs, BatchNormalization parameters and statistics and operator constants keep float32. Raises
    ``ValueError`` when even every weight in float16 does not fit."""
    from onnx import NodeProto, TensorProto, helper, numpy_helper

    out = type(proto)()
    out.CopyFrom(proto)
    graph = out.graph
    used = {n.input[i] for n in graph.node if n.op_type in ops for i in range(1, len(n.input))}
    weights = sorted(
        (t for t in graph.initializer if t.name in used and t.data_type == TensorProto.FLOAT),
        key=lambda t: -int(np.prod(t.dims)),
    )
    casts: list[NodeProto] = []
    for t in weights:
        if out.ByteSize() + sum(c.ByteSize() for c in casts) <= max_bytes:
            break
        name = t.name
        t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(t).astype(np.float16), name + ".fp16"))
        casts.append(helper.make_node("Cast", [t.name], [name], name + ".cast", to=TensorProto.FLOAT))
    nodes = list(graph.node)
    graph.ClearField("node")
    graph.node.extend(casts + nodes)
    if out.ByteSize() > max_bytes:
        raise ValueError(f"{out.ByteSize():,} bytes with every weight in float16: over {max_bytes:,}")
    return out
