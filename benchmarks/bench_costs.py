"""Memory and computation costs of every quality method, in the layout of the paper's Table 2 (and Table 6).

    FIQA_SHARED=../shared FIQA_BENCH_MODELS=../shared/models/yunet:../shared/models/scrfd \\
        python benchmarks/bench_costs.py --out costs            # every method, 64 LFW faces, 5 repeats
    python benchmarks/bench_costs.py --n 3 --repeats 2 --methods blur,faceqnet --nets none --out /tmp/costs
    fiqa-bench report costs                                     # report.md/.html with the costs section

For each quality method (``--methods``, default every registered one) on ``--n`` real faces (LFW by default:
decoded, detected with YuNet and aligned *before* timing, so the numbers are the method alone on the input its
card asks for):

* **ms per image**, one image per ``score`` call ("single") and ``--batch-size`` images per call ("batch",
  default 32; the faces are cycled when ``--n`` is smaller), median of ``--repeats`` timed repeats after one
  warm-up call; onnxruntime on the CPU with the thread count of :func:`fiqa_bench.backbones.thread_count`
  (``$FIQA_BENCH_THREADS`` or every core), recorded in the output;
* **parameters and multiply-adds per image** where the method has a model: networks (``tinyfq``, ``faceqnet``)
  counted from the ONNX file's initializers and graph (:mod:`fiqa_bench.models.onnx_info`) and cross-checked with
  :mod:`fiqa_bench.training.nets` / :mod:`fiqa_bench.training.flops` (``FlopCounterMode``) when torch is
  installed; ``svm``: support vectors x embedding width (+ dual coefficients, intercept, gamma) and
  n_sv x (dim + 1) multiply-adds, with the FR embedding it needs costed and timed separately; ``rqs``: its ranking
  weights and multiply-adds, with the hand-crafted feature extractor timed separately (and its FFT work estimated);
  perceptual methods: "—".

For ``tinyfq`` also its throughput in images/s: the model alone (from the timings above) and from the JPEG file
(decode + detect + align + model, single and batched). With torch installed, the Table 6 networks (``--nets``)
are built untrained, exported to a temporary ONNX file and timed the same way (costs do not depend on weights).
The face detectors (YuNet, SCRFD) get their own rows: parameters and multiply-adds from their ONNX graphs at
640x640, and ms per decoded photo.

Writes ``costs.json`` (schema: :mod:`fiqa_bench.writers.costs`; machine: CPU model, cores, onnxruntime version and
threads, load average at start, date) and ``costs.md`` into ``--out``. Keep the machine otherwise idle: the load
average at the start is recorded so that a busy machine shows.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import math
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import numpy as np

from fiqa_bench.api.cards import InputSpec
from fiqa_bench.backbones import thread_count
from fiqa_bench.data import atomic
from fiqa_bench.errors import FiqaBenchError
from fiqa_bench.faces import Face, detect_face, load_image, to_input
from fiqa_bench.faces.detect import LFW_PAD, make_detector
from fiqa_bench.models.onnx_info import OnnxReadError, onnx_costs
from fiqa_bench.writers.costs import costs_markdown, validate_costs

DATASETS = {  # name -> (glob under $FIQA_SHARED, detector pad)
    "lfw": ("data/lfw/lfw/*/*.jpg", LFW_PAD),
    "celeba-wild": ("data/celeba-wild/images/*/*.jpg", 0.0),
}

#: The paper's Table 2 rows (need aligning?, parameters (MB), computation (Gflops)), as printed.
PAPER_TABLE2 = {
    "blur": ("Blur", "no", "few", "low"),
    "pose": ("Pose", "yes", "0", "low"),
    "jpeg": ("JPEG", "no", "0", "low"),
    "svm": ("SVM", "yes", "few", "low"),
    "rqs": ("RQS", "yes", "few", "low"),
    "faceqnet": ("FaceQNet", "yes", "23", "3.9"),
    "tinyfq": ("tinyFQNet", "yes", "0.022", "0.0024"),
}

#: The paper's Table 6 rows (network, input size, parameters, Mflops) for our network names.
PAPER_TABLE6 = {
    "mbv2-t4-w0.35-64": ("mobilenet_t4_w0.35", "64x64", "0.013M", 1.43),
    "tinyfqnet": ("mobilenet_t4_w0.35", "64x64", "0.013M", 1.43),
    "mbv2-t6-w1-64": ("mobilenet_t6_w1", "64x64", "0.02M", 2.5),
    "mbv2-t4-w0.35-112": ("mobilenet_t4_w0.35", "112x112", "0.5M", 44.4),
    "mbv2-t6-w1-112": ("mobilenet_t6_w1", "112x112", "2.1M", 206.9),
    "resnet50-112": ("ResNet-50", "112x112", "22.4M", 3907.0),
}
TABLE6_NETS = ("mbv2-t4-w0.35-64", "mbv2-t6-w1-64", "mbv2-t4-w0.35-112", "mbv2-t6-w1-112", "resnet50-112")

#: What each built-in method needs, where the card's input kind alone does not say it.
NEED_ALIGNING = {
    "random": "no (hashes the image's benchmark-relative path; ignores the pixels)",
    "pose": "no (the 5 detected landmarks)",
    "jpeg": "no (the decoded image, on the file's own 8x8 grid)",
    "svm": "yes (the FR model's aligned crop)",
    "combination": "yes (blur's 112x112 crop; pose and jpeg as above)",
}
PERCEPTUAL = {"random", "blur", "pose", "jpeg", "combination"}
PAPER_TINYFQ = "4 ms per image on a phone (250 images/s)"


# ------------------------------------------------------------------------------------------------ environment
def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def machine_info() -> dict:
    import cv2
    import onnxruntime as ort

    torch_version = None
    if find_spec("torch") is not None:
        from importlib.metadata import PackageNotFoundError, version

        try:
            torch_version = version("torch")
        except PackageNotFoundError:
            torch_version = None
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = [0.0, 0.0, 0.0]
    return {
        "cpu_model": cpu_model(),
        "cores": os.cpu_count() or 1,
        "onnxruntime": ort.__version__,
        "threads": thread_count(),
        "opencv": cv2.__version__,
        "opencv_threads": int(cv2.getNumThreads()),
        "numpy": np.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch_version,
        "load_average_start": load,
        "date": _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
    }


# ------------------------------------------------------------------------------------------------ faces
def image_files(data: str, shared: Path | None) -> tuple[list[Path], float, str]:
    """(files, detector pad, label) for ``--data`` (a dataset name under $FIQA_SHARED or a folder)."""
    if data in DATASETS:
        if shared is None:
            raise FiqaBenchError(f"--data {data} needs the shared data: --shared PATH or FIQA_SHARED")
        pattern, pad = DATASETS[data]
        files = sorted(shared.glob(pattern))
        label = data
    else:
        root = Path(data)
        if not root.is_dir():
            raise FiqaBenchError(f"--data {data}: neither {', '.join(DATASETS)} nor a folder")
        files = sorted(p for p in root.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
        pad, label = 0.0, str(root)
    if not files:
        raise FiqaBenchError(f"--data {data}: no images found")
    return files, pad, label


def load_faces(files: Sequence[Path], detector, pad: float, n: int, seed: int) -> list[Face]:
    """``n`` faces from a seeded random order of ``files`` (files without a detected face are passed over)."""
    faces: list[Face] = []
    for i in np.random.default_rng(seed).permutation(len(files)):
        image = load_image(files[i])
        det = detect_face(detector, image, pad)
        if det is not None:
            faces.append(Face(image, det.landmarks, det.box, str(files[i]), detected=True))
            if len(faces) == n:
                return faces
    raise FiqaBenchError(f"only {len(faces)} of the {len(files)} images have a detected face; asked for {n}")


def take(inputs: Any, idx: Sequence[int]) -> Any:
    """Rows ``idx`` of an input batch (array of crops or list of Face)."""
    if isinstance(inputs, np.ndarray):
        return inputs[np.asarray(idx)]
    return [inputs[i] for i in idx]


# ------------------------------------------------------------------------------------------------ timing
def _median(xs: list[float]) -> float:
    return float(statistics.median(xs))


def time_per_image(fn: Callable[[Any], Any], inputs: Any, batch_size: int, repeats: int) -> dict:
    """ms per image, median (and each repeat) for one image per call and for ``batch_size`` per call.

    One warm-up call on the batch first (weights load, allocations); then per repeat: every input alone, in
    order, and one call on ``batch_size`` inputs (cycled).
    """
    n = len(inputs)
    batch = take(inputs, [i % n for i in range(batch_size)])
    fn(batch)
    single_runs, batch_runs = [], []
    for _ in range(repeats):
        t = time.perf_counter()
        for i in range(n):
            fn(take(inputs, [i]))
        single_runs.append((time.perf_counter() - t) * 1000.0 / n)
        t = time.perf_counter()
        fn(batch)
        batch_runs.append((time.perf_counter() - t) * 1000.0 / batch_size)
    return {
        "ms_single": _median(single_runs),
        "ms_batch": _median(batch_runs),
        "runs_ms_single": [round(x, 4) for x in single_runs],
        "runs_ms_batch": [round(x, 4) for x in batch_runs],
    }


# ------------------------------------------------------------------------------------------------ model costs
def _torch_available() -> bool:
    return find_spec("torch") is not None


def onnx_network_costs(path: Path, size: int) -> dict:
    """Parameters / multiply-adds of a quality network's ONNX file, cross-checked with nets.py when possible."""
    from fiqa_bench.models.onnx_contract import read_metadata

    oc = onnx_costs(path, (1, 3, size, size))
    extra = oc["initializer_values"] - oc["parameters"]
    params_note = (
        f"counted in the ONNX initializers of {path.name} ({oc['file_bytes']:,} bytes): "
        f"{oc['parameters']:,} learnable values (+{extra:,} BN running statistics and constants)"
    )
    macs_note = f"multiply-adds per image from the ONNX graph at {size}x{size}"
    if oc.get("norm_outputs"):
        macs_note += f" (+{oc['norm_outputs']:,} BN outputs if those are counted)"
    check: dict[str, Any] = {"net": None, "parameters_torch": None, "macs_torch": None, "reason": None}
    try:
        check["net"] = read_metadata(path).get("net")
    except Exception as exc:  # noqa: BLE001 - metadata is optional for the count itself
        check["reason"] = f"cannot read the file's metadata ({type(exc).__name__})"
    if check["net"] and _torch_available():
        from fiqa_bench.training.flops import count_flops
        from fiqa_bench.training.nets import NETS, build_net, count_parameters

        if check["net"] in NETS:
            model = build_net(check["net"])
            check["parameters_torch"] = count_parameters(model)
            check["macs_torch"] = count_flops(model, size).macs
            same_p = check["parameters_torch"] == oc["parameters"]
            same_m = check["macs_torch"] == oc["macs"]
            params_note += (
                f"; nets.py {check['net']}: {check['parameters_torch']:,} ({'equal' if same_p else 'DIFFERENT'})"
            )
            macs_note += f"; flops.py: {check['macs_torch']:,} ({'equal' if same_m else 'DIFFERENT'})"
        else:
            check["reason"] = f"network {check['net']!r} is not in fiqa_bench.training.nets"
    elif check["net"] and check["reason"] is None:
        check["reason"] = "torch not installed: no cross-check with nets.py"
    if check["reason"]:
        params_note += f"; {check['reason']}"
    return {
        "parameters": oc["parameters"],
        "parameters_note": params_note,
        "macs": oc["macs"],
        "macs_note": macs_note if oc["macs"] is not None else f"not counted: {oc['macs_unavailable']}",
        "onnx": {k: oc[k] for k in ("file_bytes", "initializer_values", "parameters", "macs", "norm_outputs")},
        "crosscheck": check,
    }


def rqs_fft_flops() -> int:
    """Estimated real flops of RQS's Gabor and Gist filtering per image (see the row note)."""
    from fiqa_bench.features import handcrafted as hc

    n_fft = hc._FFT * hc._FFT
    filters = (len(hc.GABOR_FREQUENCIES) + len(hc.GIST_FREQUENCIES)) * hc.ORIENTATIONS
    ffts = 2 + filters  # one forward transform per bank, one inverse per filter
    per_fft = 5 * n_fft * math.log2(n_fft)  # the usual 5 N log2 N for a complex FFT of N points
    products = filters * n_fft * 2  # complex spectrum x real transfer function
    magnitudes = filters * hc.SIZE * hc.SIZE * 4  # |z| = sqrt(re^2 + im^2)
    return int(ffts * per_fft + products + magnitudes)


# ------------------------------------------------------------------------------------------------ one method
def make_method(name: str, fr: str | None, fr_options: dict, tinyfq_weights: Path | None = None) -> Any:
    from fiqa_bench import registry

    cls = registry.load_class("method", name)
    kwargs: dict[str, Any] = {}
    if name == "tinyfq" and tinyfq_weights is not None:
        kwargs["weights"] = tinyfq_weights
    if getattr(cls.card, "needs_backbone", False):
        if fr is None:
            raise FiqaBenchError(f"{name} needs an FR backbone: give --fr (e.g. onnx:PATH)")
        kwargs["backbone"] = registry.create("backbone", fr, **fr_options)
    return registry.create("method", name, **kwargs)


def need_aligning(name: str, card) -> str:
    if name in NEED_ALIGNING:
        return NEED_ALIGNING[name]
    if card.input.kind == "aligned":
        return f"yes ({card.input.size}x{card.input.size} crop)"
    return "no (decoded image + 5 landmarks)"


def method_row(name: str, args, faces: list[Face]) -> tuple[dict, Any]:
    """The Table 2 row of one method (costs + timings) and the method object (None when it failed)."""
    from fiqa_bench.methods.rqs import RQSQuality
    from fiqa_bench.methods.svm import SVMQuality

    paper = PAPER_TABLE2.get(name)
    row: dict[str, Any] = {
        "name": name,
        "need_aligning": "?",
        "input": "?",
        "parameters": None,
        "parameters_note": "",
        "macs": None,
        "macs_note": "",
        "ms_single": None,
        "ms_batch": None,
        "skipped": None,
        "paper": (
            {"name": paper[0], "need_aligning": paper[1], "parameters": paper[2], "computation": paper[3]}
            if paper
            else None
        ),
        "notes": [],
        "components": [],
    }
    try:
        method = make_method(name, args.fr, args.fr_options, args.tinyfq_weights)
    except Exception as exc:  # noqa: BLE001 - a method that cannot be built is a skipped row with the reason
        row["skipped"] = f"cannot create it: {exc}"
        return row, None
    card = method.card
    row["need_aligning"] = need_aligning(name, card)
    row["input"] = card.input.describe()
    inputs = to_input(faces, card.input)
    try:
        method.score(take(inputs, [0]))  # loads weights: a missing file becomes a skipped row
    except Exception as exc:  # noqa: BLE001
        row["skipped"] = f"{type(exc).__name__}: {exc}"
        return row, None

    weights_path = getattr(method, "weights_path", None)
    if isinstance(method, SVMQuality):
        svm_costs(method, row, faces, args)
    elif isinstance(method, RQSQuality):
        rqs_costs(method, row, inputs, args)
    elif callable(weights_path) and str(weights_path()).endswith(".onnx") and card.input.kind == "aligned":
        row.update({k: v for k, v in onnx_network_costs(Path(weights_path()), card.input.size).items()})
    elif name in PERCEPTUAL:
        row["parameters_note"] = "no learned model"
    else:
        row["parameters_note"] = "not known to this benchmark (third-party method): parameters not counted"
    row.update(time_per_image(method.score, inputs, args.batch_size, args.repeats))
    if card.input.kind == "face":
        row["notes"].append("takes the decoded Face: any alignment it does is inside its time")
    return row, method


def svm_costs(method, row: dict, faces: list[Face], args) -> None:
    m = method._load()
    n_sv, dim = (int(x) for x in m["support_vectors"].shape)
    row["parameters"] = n_sv * dim + n_sv + 2
    row["parameters_note"] = (
        f"{n_sv:,} support vectors x {dim} dims + {n_sv:,} dual coefficients + intercept "
        f"+ gamma ({method.model_path().name})"
    )
    row["macs"] = n_sv * (dim + 1)
    row["macs_note"] = (
        f"RBF SVR: n_sv x (dim + 1) multiply-adds + {n_sv:,} exp per image (and n_sv x dim "
        f"once per call for the support vectors' norms); the row's ms include the FR embedding"
    )
    backbone = method._backbone()
    bb_inputs = to_input(faces, backbone.card.input)
    model_path = getattr(backbone, "model_path", None)
    label = backbone.card.name + (f" {Path(model_path()).name}" if callable(model_path) else "")
    comp: dict[str, Any] = {
        "what": f"FR embedding ({label})",
        "parameters": None,
        "macs": None,
        "flops_estimate": None,
        "note": "",
    }
    if callable(model_path) and str(model_path()).endswith(".onnx"):
        try:
            oc = onnx_costs(Path(model_path()))
            comp["parameters"], comp["macs"] = oc["parameters"], oc["macs"]
            comp["note"] = (
                f"needed for every image before the SVR (the paper's point about SVM throughput); "
                f"{Path(model_path()).name}: {oc['parameters']:,} parameters, "
                + (
                    f"{oc['macs']:,} multiply-adds per image"
                    if oc["macs"] is not None
                    else f"multiply-adds not counted: {oc['macs_unavailable']}"
                )
            )
        except OnnxReadError as exc:
            comp["note"] = f"parameters not counted: {exc}"
    else:
        comp["note"] = "needed for every image before the SVR; not an ONNX model: parameters not counted"
    comp.update(time_per_image(backbone.embed, bb_inputs, args.batch_size, args.repeats))
    embeddings = np.asarray(backbone.embed(bb_inputs), np.float32)
    svr = {
        "what": "SVR alone (on precomputed embeddings)",
        "parameters": row["parameters"],
        "macs": row["macs"],
        "flops_estimate": None,
        "note": "",
    }
    svr.update(time_per_image(method.score_embeddings, embeddings, args.batch_size, args.repeats))
    row["components"] += [comp, svr]


def rqs_costs(method, row: dict, inputs: np.ndarray, args) -> None:
    from fiqa_bench.features.handcrafted import DIMS, features

    m = method._load()
    groups = list(m["groups"])
    row["parameters"] = sum(3 * DIMS[g] for g in groups) + len(m["alpha"])
    dims = sum(DIMS[g] for g in groups)
    row["parameters_note"] = (
        f"ranking weights: mean, scale and weight per feature ({dims:,} features: "
        + ", ".join(f"{g} {DIMS[g]}" for g in groups)
        + f") + {len(m['alpha'])} stage-2 "
        f"weights; the feature extractor has no learned parameters"
    )
    row["macs"] = dims
    row["macs_note"] = "ranking stage only (one multiply-add per feature); the feature extraction is below"
    comp = {
        "what": "feature extractor (HoG, Gabor, Gist, LBP)",
        "parameters": 0,
        "macs": None,
        "flops_estimate": rqs_fft_flops(),
        "note": (
            "flops estimate of its Gabor/Gist filtering: 74 complex 2-D FFTs of 128x128 at 5 N log2 N, "
            "spectrum products and magnitudes (real flops, not multiply-adds; HoG, LBP, pooling and the "
            "Gist prefilter not counted)"
        ),
    }
    comp.update(time_per_image(lambda x: features(x, tuple(groups)), inputs, args.batch_size, args.repeats))
    row["components"].append(comp)


# ------------------------------------------------------------------------------------------------ tinyfq
def tinyfq_throughput(row: dict, method, files: list[Path], detector, pad: float, args) -> dict:
    """images/s of tinyfq alone (from its row) and from the JPEG file (decode + detect + align + model)."""
    if row.get("skipped") or method is None:
        return {"skipped": f"the tinyfq row was not measured ({row.get('skipped')})", "paper": PAPER_TINYFQ}
    spec = method.card.input

    def prepare(path: Path, stages: dict | None = None) -> Face:
        t0 = time.perf_counter()
        image = load_image(path)
        t1 = time.perf_counter()
        det = detect_face(detector, image, pad)
        t2 = time.perf_counter()
        if stages is not None:
            stages["decode"] += t1 - t0
            stages["detect"] += t2 - t1
        if det is None:
            raise FiqaBenchError(f"{path}: no face detected on the timed pass (it had one before)")
        return Face(image, det.landmarks, det.box, str(path), detected=True)

    n = len(files)
    batch_files = [files[i % n] for i in range(args.batch_size)]
    method.score(to_input([prepare(files[0])], spec))  # warm-up
    single_runs, batch_runs, stage_runs = [], [], []
    for _ in range(args.repeats):
        stages = {"decode": 0.0, "detect": 0.0, "align": 0.0, "model": 0.0}
        t = time.perf_counter()
        for path in files:
            face = prepare(path, stages)
            t2 = time.perf_counter()
            crop = to_input([face], spec)
            t3 = time.perf_counter()
            method.score(crop)
            stages["align"] += t3 - t2
            stages["model"] += time.perf_counter() - t3
        single_runs.append(n / (time.perf_counter() - t))
        stage_runs.append({k: v * 1000.0 / n for k, v in stages.items()})
        t = time.perf_counter()
        method.score(to_input([prepare(p) for p in batch_files], spec))
        batch_runs.append(args.batch_size / (time.perf_counter() - t))
    return {
        "skipped": None,
        "model_images_per_s": {"single": 1000.0 / row["ms_single"], "batch": 1000.0 / row["ms_batch"]},
        "pipeline_images_per_s": {"single": _median(single_runs), "batch": _median(batch_runs)},
        "stages_ms": {k: _median([s[k] for s in stage_runs]) for k in ("decode", "detect", "align", "model")},
        "files": n,
        "detector": args.detector,
        "paper": PAPER_TINYFQ,
    }


# ------------------------------------------------------------------------------------------------ detectors
#: The detectors every aligned method's input passes through, and the input side their multiply-adds are given at
#: (SCRFD's fixed 640x640 canvas; YuNet runs at each image's own size, so its count scales with the pixels).
DETECTORS = ("yunet", "scrfd")
DETECTOR_INPUT = 640


def detector_rows(faces: list[Face], args) -> list[dict]:
    """Parameters and multiply-adds (ONNX graph at 640x640) and ms per image of each face detector, timed on the
    decoded photos of ``faces`` (one image per call: detectors take one image)."""
    rows = []
    for name in DETECTORS:
        row: dict[str, Any] = {
            "name": name,
            "input_size": DETECTOR_INPUT,
            "parameters": None,
            "macs": None,
            "ms_single": None,
            "file": None,
            "skipped": None,
            "note": "",
        }
        try:
            detector = make_detector(name)
            path = Path(detector._weights.path())  # the ONNX file the detector runs (downloaded or local)
        except Exception as exc:  # noqa: BLE001 - a detector whose weights are missing is a skipped row
            row["skipped"] = f"{type(exc).__name__}: {exc}"
            rows.append(row)
            continue
        oc = onnx_costs(path, (1, 3, DETECTOR_INPUT, DETECTOR_INPUT))
        row.update(file=path.name, parameters=oc["parameters"], macs=oc["macs"])
        row["note"] = (
            f"{path.name}: {oc['parameters']:,} parameters, multiply-adds at {DETECTOR_INPUT}x"
            f"{DETECTOR_INPUT} ({oc['shapes_from']})"
            if oc["macs"] is not None
            else f"multiply-adds not counted: {oc['macs_unavailable']}"
        )
        if name == "yunet":
            row["note"] += "; YuNet runs at each image's own size, so its multiply-adds scale with the pixel count"
        images = [face.image for face in faces]
        detector.detect(images[0])  # warm-up: loads the model
        runs = []
        for _ in range(args.repeats):
            t = time.perf_counter()
            for image in images:
                detector.detect(image)
            runs.append((time.perf_counter() - t) * 1000.0 / len(images))
        row["ms_single"] = _median(runs)
        rows.append(row)
    return rows


# ------------------------------------------------------------------------------------------------ Table 6
def network_rows(names: list[str], faces: list[Face], args) -> dict:
    if not names:
        return {"skipped": "not asked for (--nets none)", "rows": []}
    if not _torch_available():
        return {"skipped": "torch is not installed (pip install 'fiqa-bench[train]')", "rows": []}
    import torch

    from fiqa_bench.backbones.onnx_arcface import make_session
    from fiqa_bench.models.onnx_contract import INPUT_NAME, OUTPUT_NAME, preprocess
    from fiqa_bench.training.export import export_onnx
    from fiqa_bench.training.flops import count_flops
    from fiqa_bench.training.nets import build_net, count_parameters, net_spec

    # torch only builds and exports here; one thread keeps its OpenMP workers from competing with the timings
    torch.set_num_threads(1)
    rows = []
    with tempfile.TemporaryDirectory(prefix="fiqa-costs-") as tmp:
        for name in names:
            spec = net_spec(name)
            torch.manual_seed(0)
            model = build_net(name).eval()
            params_torch = count_parameters(model)
            flops = count_flops(model, spec.input_size)
            path = export_onnx(
                model,
                Path(tmp) / f"{name}.onnx",
                net=name,
                input_size=spec.input_size,
                card={"purpose": "bench_costs: untrained instance, for costs only"},
            )
            oc = onnx_costs(path, (1, 3, spec.input_size, spec.input_size))
            session = make_session(path)
            x = preprocess(to_input(faces, InputSpec("aligned", spec.input_size, "RGB")))
            timing = time_per_image(
                lambda b, s=session: s.run([OUTPUT_NAME], {INPUT_NAME: b}), x, args.batch_size, args.repeats
            )
            paper = PAPER_TABLE6.get(name)
            rows.append(
                {
                    "name": name,
                    "input_size": spec.input_size,
                    "parameters": oc["parameters"],
                    "parameters_torch": params_torch,
                    "initializer_values": oc["initializer_values"],
                    "macs": oc["macs"],
                    "macs_torch": flops.macs,
                    "norm_outputs": flops.norm_outputs,
                    "onnx_bytes": oc["file_bytes"],
                    **timing,
                    "paper": (
                        {"network": paper[0], "input_size": paper[1], "parameters": paper[2], "mflops": paper[3]}
                        if paper
                        else None
                    ),
                }
            )
            del session
    return {"skipped": None, "rows": rows}


# ------------------------------------------------------------------------------------------------ main
def _options(pairs: list[str]) -> dict:
    out = {}
    for p in pairs:
        key, sep, value = p.partition("=")
        if not sep:
            raise SystemExit(f"--fr-option wants KEY=VALUE, got {p!r}")
        out[key] = value
    return out


def run(args) -> dict:
    from fiqa_bench.registry import entries

    machine = machine_info()  # first: the load average before this run adds its own
    shared = Path(args.shared) if args.shared else None
    names = [m for m in args.methods.split(",") if m] if args.methods else list(entries("method"))
    nets = [] if args.nets in ("", "none") else [s for s in args.nets.split(",") if s]
    if args.fr is None and shared is not None:
        args.fr = f"onnx:{shared / 'models/mobilefacenet/mobilefacenet.onnx'}"
        args.fr_options = args.fr_options or {"normalisation": "mobilefacenet"}
    files, pad, label = image_files(args.data, shared)
    detector = make_detector(args.detector)
    faces = load_faces(files, detector, pad, args.n, args.seed)
    for face in faces:  # the same files again for the pipeline timing: warm the OS file cache now
        Path(face.path).read_bytes()

    rows, throughput = [], None
    for name in names:
        print(f"  {name} ...", file=sys.stderr, flush=True)
        row, method = method_row(name, args, faces)
        rows.append(row)
        if name == "tinyfq":
            throughput = tinyfq_throughput(row, method, [Path(f.path) for f in faces], detector, pad, args)
    print("  networks ...", file=sys.stderr, flush=True)
    networks = network_rows(nets, faces, args)
    print("  detectors ...", file=sys.stderr, flush=True)
    detectors = detector_rows(faces, args)
    data = {
        "costs_schema_version": 1,
        "machine": machine,
        "config": {
            "data": label,
            "images": len(faces),
            "repeats": args.repeats,
            "batch_size": args.batch_size,
            "detector": args.detector,
            "fr": args.fr,
            "fr_options": args.fr_options,
            "seed": args.seed,
            "command": " ".join([Path(sys.argv[0]).name] + sys.argv[1:]),
        },
        "methods": rows,
        "networks": networks,
        "detectors": detectors,
    }
    if throughput is not None:
        data["tinyfq_throughput"] = throughput
    return validate_costs(data, "bench_costs output")


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("costs"), help="folder for costs.json and costs.md")
    ap.add_argument("--n", type=int, default=64, help="distinct real faces timed")
    ap.add_argument("--repeats", type=int, default=5, help="timed repeats (the median is reported)")
    ap.add_argument("--batch-size", type=int, default=32, help="images per call for the 'batch' timing")
    ap.add_argument("--methods", default=None, help="comma-separated methods (default: every registered one)")
    ap.add_argument(
        "--nets",
        default=",".join(TABLE6_NETS),
        help="comma-separated Table 6 networks (fiqa_bench.training.nets names), or 'none'",
    )
    ap.add_argument("--data", default="lfw", help=f"{' or '.join(DATASETS)} (under --shared) or a folder of photos")
    ap.add_argument("--shared", default=os.environ.get("FIQA_SHARED"), help="shared data folder ($FIQA_SHARED)")
    ap.add_argument("--detector", default="yunet", choices=("yunet", "scrfd"))
    ap.add_argument(
        "--fr",
        default=None,
        help="FR backbone for svm (default: the shared MobileFaceNet, onnx:$FIQA_SHARED/models/...)",
    )
    ap.add_argument(
        "--fr-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="backbone option (default with the shared MobileFaceNet: normalisation=mobilefacenet)",
    )
    ap.add_argument(
        "--tinyfq-weights",
        type=Path,
        default=None,
        help="tinyfq ONNX file to time instead of the bundled weights/tinyfq.onnx",
    )
    ap.add_argument("--seed", type=int, default=0, help="which faces are drawn")
    args = ap.parse_args(argv)
    if args.n < 1 or args.repeats < 1 or args.batch_size < 1:
        ap.error("--n, --repeats and --batch-size must be positive")
    args.fr_options = _options(args.fr_option)
    try:
        data = run(args)
    except FiqaBenchError as exc:
        raise SystemExit(f"bench_costs: {exc}") from None
    args.out.mkdir(parents=True, exist_ok=True)
    atomic.write_json(args.out / "costs.json", data)
    text = costs_markdown(data, level=1)
    atomic.write_text(args.out / "costs.md", text)
    print(text)
    print(f"wrote {args.out / 'costs.json'} and {args.out / 'costs.md'}", file=sys.stderr)
    return data


if __name__ == "__main__":
    main()
