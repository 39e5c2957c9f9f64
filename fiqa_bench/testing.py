"""Conformance kit for adapter authors: does my quality method (or FR backbone) behave as fiqa-bench assumes?

The runner caches scores per image, cuts batches anywhere and reorders images, and adapters may be sent to
worker processes, so an adapter must give each image the same value however it is batched, ordered or
pickled. The kit checks exactly these assumptions, in the spirit of scikit-learn's ``check_estimator``::

    from fiqa_bench.testing import check_method
    check_method(MyQuality())                 # raises AssertionError naming the failed check

    # or, one pytest test per check:
    from fiqa_bench.testing import parametrize_with_checks

    @parametrize_with_checks([MyQuality(), MyQuality(threshold=3)])
    def test_conformance(adapter, check):
        check()

Checks for a quality method (:func:`method_checks`): ``card`` (a :class:`MethodCard` class attribute with a
name, version, summary, licence and a sane input spec), ``output`` (shape (N,), float32), ``finite``,
``batch_equals_single`` (scoring a batch == scoring each image alone, 1e-5 relative), ``order_equivariant``
(permuting the input permutes the output), ``deterministic`` (two calls agree, 1e-6 relative),
``inputs_unchanged`` (the input is not modified in place), ``empty`` (an empty batch returns a float32 array
of shape (0,): batches may be empty after skipping bad images, so an empty batch is not an error), ``pickle``
(a pickled and unpickled adapter gives the same scores), ``capabilities`` (a backbone does what its card's
``capabilities`` declare, e.g. ``stochastic_embed`` is seeded and batch-independent; a method's
``needs_capabilities`` are known names and come with ``needs_backbone``) and ``light_import`` (importing the
adapter's module in a fresh interpreter does not import torch, onnxruntime, dlib, tensorflow, jax or cv2: heavy
imports belong inside functions so that listing adapters stays cheap). :func:`backbone_checks` has the same checks for
embeddings (N, card.embedding_dim), batch agreement within 1e-4 of each row's largest component.

Without ``images``, the checks run on :func:`synthetic_faces`: drawn faces (skin, eyes, brows, nose, mouth,
hair on a smooth background) under random similarity transforms, some blurred, noisy, JPEG-compressed, dark, or
cut by the image border, prepared for the card's input spec as the runner would prepare them. They need no data;
pass real inputs (aligned crops, or a list of ``Face``) to check on those as well.
"""

from __future__ import annotations

import copy
import inspect
import json
import os
import pickle
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

import numpy as np

from fiqa_bench.api.cards import INPUT_KINDS, BackboneCard, InputSpec, MethodCard, Weights

#: Modules an adapter's module must not import at import time.
HEAVY_MODULES = ("torch", "onnxruntime", "dlib", "tensorflow", "jax", "cv2")
SCORE_RTOL = 1e-5
DETERMINISM_RTOL = 1e-6
EMBEDDING_RTOL = 1e-4

Check = Callable[[], None]


# ------------------------------------------------------------------------------------------ synthetic faces
@dataclass
class _SyntheticFace:
    """Stand-in with the attributes of :class:`fiqa_bench.faces.pipeline.Face`, used only if it is unavailable."""

    image: np.ndarray
    landmarks: np.ndarray
    box: np.ndarray | None = None
    path: str = ""
    detected: bool = True
    fallback: bool = False


def _make_face(**fields: Any) -> Any:
    try:
        from fiqa_bench.faces.pipeline import Face
    except ImportError:
        return _SyntheticFace(**fields)
    try:
        accepted = inspect.signature(Face).parameters
        kwargs = {k: v for k, v in fields.items() if k in accepted}
    except (TypeError, ValueError):
        kwargs = fields
    return Face(**kwargs)


def _smooth_field(rng: np.random.Generator, h: int, w: int, cells: int, channels: int) -> np.ndarray:
    import cv2

    coarse = rng.uniform(-1.0, 1.0, size=(cells, cells, channels)).astype(np.float32)
    out = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)
    return out.reshape(h, w, channels)


def _canonical_face(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A face drawn on a 224x224 canvas whose landmarks are the ArcFace template x 2; returns (BGR float, mask)."""
    import cv2

    from fiqa_bench.faces.align import ARCFACE_TEMPLATE

    s = 224
    pts = ARCFACE_TEMPLATE.astype(np.float64) * 2.0
    skin = np.array([rng.uniform(90, 170), rng.uniform(120, 190), rng.uniform(160, 235)])
    img = np.empty((s, s, 3), np.float32)
    img[:] = skin
    yy, xx = np.mgrid[0:s, 0:s].astype(np.float32)
    light = 1.0 + 0.25 * ((xx - s / 2) / s) * rng.uniform(-1, 1) + 0.15 * ((yy - s / 2) / s)
    img *= light[..., None]
    img += 10.0 * _smooth_field(rng, s, s, 12, 3)
    mask = np.zeros((s, s), np.float32)
    cv2.ellipse(mask, (112, 128), (int(rng.uniform(72, 84)), int(rng.uniform(96, 108))), 0, 0, 360, 1.0, -1)
    hair = np.array([rng.uniform(10, 80)] * 3) + rng.uniform(-10, 10, 3)
    cv2.ellipse(img, (112, 70), (92, 62), 0, 180, 360, hair.tolist(), -1)
    cv2.ellipse(mask, (112, 70), (92, 62), 0, 180, 360, 1.0, -1)
    dark = (skin * 0.35).tolist()
    for ex, ey in pts[:2]:
        c = (int(round(ex)), int(round(ey)))
        cv2.ellipse(img, c, (15, 7), 0, 0, 360, (235, 235, 235), -1, cv2.LINE_AA)
        cv2.circle(img, c, 6, (rng.uniform(20, 90),) * 3, -1, cv2.LINE_AA)
        cv2.line(img, (c[0] - 16, c[1] - 22), (c[0] + 16, c[1] - 25), hair.tolist(), 5, cv2.LINE_AA)
    nose = pts[2]
    cv2.line(img, (int(nose[0]) - 2, 110), (int(nose[0]) - 6, int(nose[1])), dark, 3, cv2.LINE_AA)
    cv2.ellipse(img, (int(nose[0]), int(nose[1]) + 4), (12, 5), 0, 0, 360, dark, -1, cv2.LINE_AA)
    (mx0, my0), (mx1, my1) = pts[3], pts[4]
    lips = (skin * np.array([0.55, 0.5, 0.85])).tolist()
    cv2.ellipse(
        img, (int((mx0 + mx1) / 2), int((my0 + my1) / 2)), (int((mx1 - mx0) / 2), 8), 0, 0, 360, lips, -1, cv2.LINE_AA
    )
    return img, cv2.GaussianBlur(mask, (0, 0), 2.0)


def synthetic_faces(n: int = 8, seed: int = 0) -> list:
    """``n`` synthetic photos with one face each, as ``Face`` objects (BGR image, 5 landmarks, box).

    Image ``i`` is degraded by ``i % 6``: 0 clean, 1 Gaussian blur, 2 noise, 3 JPEG quality 10-30, 4 dark,
    5 face cut by the image border (its aligned crop gets a black band, as real crops near an edge do).
    Sizes vary between 120 and 220 px per side. Deterministic for a given ``seed``.
    """
    import cv2

    from fiqa_bench.faces.align import ARCFACE_TEMPLATE

    rng = np.random.default_rng(seed)
    faces = []
    canon_pts = ARCFACE_TEMPLATE.astype(np.float64) * 2.0  # where _canonical_face draws eyes, nose and mouth
    for i in range(n):
        h, w = (int(v) for v in rng.integers(120, 221, size=2))
        kind = i % 6
        background = (
            rng.uniform(70, 190)
            + 50 * _smooth_field(rng, h, w, 5, 1)
            + 20 * _smooth_field(rng, h, w, 4, 3)
            + 8 * _smooth_field(rng, h, w, 30, 3)
        )
        face, mask = _canonical_face(rng)
        scale = rng.uniform(0.45, 0.65) * min(h, w) / 224.0
        angle = np.deg2rad(rng.uniform(-12, 12))
        centre = np.array([w / 2, h / 2]) + rng.uniform(-0.06, 0.06, 2) * (w, h)
        if kind == 5:
            centre[0] = rng.uniform(0.1, 0.18) * w  # face hangs off the left edge
        rot = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        m = np.hstack([rot, (centre - rot @ np.array([112.0, 128.0]))[:, None]])
        warped = cv2.warpAffine(face, m, (w, h), flags=cv2.INTER_LINEAR)
        alpha = cv2.warpAffine(mask, m, (w, h), flags=cv2.INTER_LINEAR)[..., None]
        img = alpha * warped + (1 - alpha) * background
        if kind == 1:
            img = cv2.GaussianBlur(img, (0, 0), rng.uniform(1.5, 3.0))
        elif kind == 2:
            img = img + rng.normal(0, rng.uniform(6, 12), img.shape)
        elif kind == 4:
            img = img * rng.uniform(0.2, 0.35)
        img = np.clip(np.round(img), 0, 255).astype(np.uint8)
        if kind == 3:
            _, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(10, 31))])
            img = cv2.imdecode(buf, cv2.IMREAD_COLOR)
        landmarks = (canon_pts @ m[:, :2].T + m[:, 2]).astype(np.float32)
        ys, xs = np.nonzero(alpha[..., 0] > 0.5)
        box = np.array([xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1], np.float32)
        faces.append(
            _make_face(
                image=img, landmarks=landmarks, box=box, path=f"synthetic/{seed}-{i}.png", detected=True, fallback=False
            )
        )
    return faces


def prepare(faces: Sequence[Any], spec: InputSpec) -> Any:
    """Turn ``Face`` objects into what an adapter with input ``spec`` receives (the runner's own preparation
    when :mod:`fiqa_bench.faces.pipeline` is available)."""
    if spec.kind == "face":
        return list(faces)
    try:
        from fiqa_bench.faces.pipeline import to_input
    except ImportError:
        pass
    else:
        return to_input(list(faces), spec)
    import cv2

    from fiqa_bench.faces.align import align_faces

    crops = align_faces([f.image for f in faces], [f.landmarks for f in faces], spec.size)
    if spec.colour == "RGB":
        return np.ascontiguousarray(crops[..., ::-1])
    if spec.colour == "GRAY":
        return np.stack([cv2.cvtColor(c, cv2.COLOR_BGR2GRAY) for c in crops]) if len(crops) else crops[..., 0]
    return crops


def synthetic_inputs(spec: InputSpec, n: int = 8, seed: int = 0) -> Any:
    """:func:`synthetic_faces` prepared for ``spec``."""
    return prepare(synthetic_faces(n, seed), spec)


# ------------------------------------------------------------------------------------------ helpers
def _who(adapter: Any) -> str:
    card = getattr(type(adapter), "card", None) or getattr(adapter, "card", None)
    name = getattr(card, "name", None) or type(adapter).__name__
    return f"{name!r} ({type(adapter).__module__}.{type(adapter).__qualname__})"


def _fail(check: str, adapter: Any, message: str) -> NoReturn:
    raise AssertionError(f"[{check}] {_who(adapter)}: {message}")


def _length(images: Any) -> int:
    return len(images)


def _take(images: Any, index: Sequence[int] | np.ndarray) -> Any:
    index = np.asarray(index, dtype=np.int64)
    if isinstance(images, np.ndarray):
        return images[index]
    return [images[int(i)] for i in index]


def _empty_like(images: Any) -> Any:
    if isinstance(images, np.ndarray):
        return images[:0]
    return []


def _snapshot(images: Any) -> list[np.ndarray | None]:
    if isinstance(images, np.ndarray):
        return [images.copy()]
    out: list[np.ndarray | None] = []
    for item in images:
        for attr in ("image", "landmarks", "box"):
            v = getattr(item, attr, None)
            out.append(None if v is None else np.array(v, copy=True))
    return out


def _same_snapshot(a: list, b: list) -> bool:
    if len(a) != len(b):
        return False
    for x, y in zip(a, b):
        if (x is None) != (y is None):
            return False
        if x is not None and (x.shape != y.shape or not np.array_equal(x, y, equal_nan=x.dtype.kind == "f")):
            return False
    return True


def _scores_close(a: np.ndarray, b: np.ndarray, rtol: float) -> np.ndarray:
    """Per element: |a - b| <= rtol * max(|a|, |b|, 1e-3 * largest |a|) (relative, with a floor near zero)."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    scale = float(np.abs(a).max()) if a.size else 0.0
    return np.abs(a - b) <= rtol * np.maximum(np.maximum(np.abs(a), np.abs(b)), 1e-3 * scale)


def _rows_close(a: np.ndarray, b: np.ndarray, rtol: float) -> np.ndarray:
    """Per row: max |a - b| <= rtol * max |a_row| (embeddings are compared relative to their own size)."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    return np.abs(a - b).max(axis=1) <= rtol * np.maximum(np.abs(a).max(axis=1), 1e-12)


def _describe_mismatch(a: np.ndarray, b: np.ndarray, ok: np.ndarray) -> str:
    bad = np.flatnonzero(~ok)
    i = int(bad[0])
    with np.printoptions(threshold=8, edgeitems=3, precision=7):
        return f"{len(bad)} of {len(ok)} differ; first at index {i}: {np.asarray(a)[i]!r} vs {np.asarray(b)[i]!r}"


# ------------------------------------------------------------------------------------------ card checks
def _check_common_card(check: str, adapter: Any, card: Any, card_type: type[Any]) -> None:
    if not isinstance(card, card_type):
        _fail(check, adapter, f"card must be a fiqa_bench.api.cards.{card_type.__name__}, got {type(card).__name__}")
    static: Any = getattr(type(adapter), "card", None)
    # a per-instance card (e.g. PerInstanceCard: the sha256 of the weights file actually used) may refine the class
    # card, but must be the same adapter: same card type, name and version
    if static is not card and not (
        type(static) is type(card)
        and getattr(static, "name", None) == card.name
        and getattr(static, "version", None) == card.version
    ):
        _fail(check, adapter, "card must be a class attribute (listing adapters reads it without constructing them)")
    name = card.name
    if not isinstance(name, str) or not name.strip():
        _fail(check, adapter, "card.name is empty")
    if name != name.strip() or any(c.isspace() for c in name) or ":" in name:
        _fail(check, adapter, f"card.name {name!r} must have no spaces and no ':' (':' starts an argument)")
    for attr in ("version", "summary", "licence"):
        v = getattr(card, attr)
        if not isinstance(v, str) or not v.strip():
            _fail(check, adapter, f"card.{attr} must be a non-empty string, got {v!r}")
    if not isinstance(card.paper, str):
        _fail(check, adapter, f"card.paper must be a string, got {type(card.paper).__name__}")
    spec = card.input
    if not isinstance(spec, InputSpec):
        _fail(check, adapter, f"card.input must be an InputSpec, got {type(spec).__name__}")
    if spec.kind not in INPUT_KINDS:
        _fail(check, adapter, f"card.input.kind {spec.kind!r} is not one of {INPUT_KINDS}")
    if spec.kind == "aligned" and (not isinstance(spec.size, (int, np.integer)) or not 16 <= spec.size <= 1024):
        _fail(check, adapter, f"card.input.size must be an int in [16, 1024], got {spec.size!r}")
    if card.weights is not None and not isinstance(card.weights, Weights):
        _fail(check, adapter, f"card.weights must be None or a Weights, got {type(card.weights).__name__}")
    try:
        json.dumps(card.as_dict(), default=str)
        card.card_hash()
    except Exception as exc:  # noqa: BLE001 - any failure here is the finding
        _fail(check, adapter, f"card cannot be serialised for results files: {type(exc).__name__}: {exc}")
    identity = getattr(adapter, "identity", None)
    if identity is not None:
        ident = identity()
        if not isinstance(ident, str) or not ident:
            _fail(check, adapter, f"identity() must return a non-empty string, got {ident!r}")


def check_method_card(method: Any) -> None:
    card: Any = getattr(method, "card", None)
    _check_common_card("card", method, card, MethodCard)
    if not isinstance(card.higher_is_better, bool):
        _fail("card", method, f"card.higher_is_better must be a bool, got {card.higher_is_better!r}")
    if not isinstance(card.score_range, str) or not card.score_range.strip():
        _fail("card", method, "card.score_range must say what range the scores have")


def check_backbone_card(backbone: Any) -> None:
    card: Any = getattr(backbone, "card", None)
    _check_common_card("card", backbone, card, BackboneCard)
    dim = card.embedding_dim
    if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or dim < 1:
        _fail("card", backbone, f"card.embedding_dim must be a positive int, got {dim!r}")


# ------------------------------------------------------------------------------------------ output checks
class _Outputs:
    """Runs an adapter and validates one call's output, for either scores (N,) or embeddings (N, D)."""

    def __init__(self, adapter: Any, kind: str) -> None:
        self.adapter = adapter
        self.kind = kind  # "method" | "backbone"

    def call(self, images: Any, check: str, adapter: Any | None = None) -> np.ndarray:
        adapter = self.adapter if adapter is None else adapter
        fn = getattr(adapter, "score" if self.kind == "method" else "embed", None)
        if not callable(fn):
            _fail(check, adapter, f"has no {'score' if self.kind == 'method' else 'embed'}() method")
        try:
            out = fn(images)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # noqa: BLE001 - report which check provoked it (SystemExit included)
            _fail(check, adapter, f"{fn.__name__}() raised {type(exc).__name__}: {exc}")
        return self.validate(out, _length(images), check, adapter)

    def validate(self, out: Any, n: int, check: str, adapter: Any) -> np.ndarray:
        if not isinstance(out, np.ndarray):
            _fail(check, adapter, f"must return a numpy array, got {type(out).__name__}")
        if out.dtype.kind not in "iuf":  # strings or objects: the runner refuses them too (api.check_scores)
            _fail(check, adapter, f"returned non-numeric dtype {out.dtype}, expected float32")
        if self.kind == "method":
            if out.shape != (n,):
                _fail(check, adapter, f"returned shape {out.shape} for {n} images, expected ({n},)")
        else:
            dim = getattr(getattr(adapter, "card", None), "embedding_dim", None)
            if out.ndim != 2 or out.shape[0] != n or (dim is not None and out.shape[1] != dim):
                _fail(check, adapter, f"returned shape {out.shape} for {n} images, expected ({n}, {dim})")
        if out.dtype != np.float32:
            _fail(check, adapter, f"returned dtype {out.dtype}, expected float32")
        return out

    def close(self, a: np.ndarray, b: np.ndarray, rtol: float) -> np.ndarray:
        return _scores_close(a, b, rtol) if self.kind == "method" else _rows_close(a, b, rtol)


def _check_output(runner: _Outputs, images: Any) -> None:
    runner.call(images, "output")


def _check_finite(runner: _Outputs, images: Any) -> None:
    out = runner.call(images, "finite")
    bad = ~np.isfinite(out).reshape(len(out), -1).all(axis=1)
    if bad.any():
        _fail(
            "finite",
            runner.adapter,
            f"non-finite output (NaN/inf) for {int(bad.sum())} of {len(out)} images "
            f"(indices {np.flatnonzero(bad)[:10].tolist()})",
        )


def _check_batch_equals_single(runner: _Outputs, images: Any, rtol: float) -> None:
    batch = runner.call(images, "batch_equals_single")
    single = np.concatenate([runner.call(_take(images, [i]), "batch_equals_single") for i in range(len(batch))])
    ok = runner.close(batch, single, rtol)
    if not ok.all():
        _fail(
            "batch_equals_single",
            runner.adapter,
            f"scoring a batch differs from scoring each image alone (rtol {rtol:g}): "
            f"{_describe_mismatch(batch, single, ok)}",
        )


def _check_order(runner: _Outputs, images: Any, rtol: float) -> None:
    n = _length(images)
    base = runner.call(images, "order_equivariant")
    for perm in (np.arange(n)[::-1], np.random.default_rng(12345).permutation(n)):
        out = runner.call(_take(images, perm), "order_equivariant")
        ok = runner.close(base[perm], out, rtol)
        if not ok.all():
            _fail(
                "order_equivariant",
                runner.adapter,
                f"permuting the input does not permute the output: {_describe_mismatch(base[perm], out, ok)}",
            )


def _check_deterministic(runner: _Outputs, images: Any) -> None:
    a = runner.call(images, "deterministic")
    b = runner.call(images, "deterministic")
    ok = runner.close(a, b, DETERMINISM_RTOL)
    if not ok.all():
        _fail("deterministic", runner.adapter, f"two calls on the same images disagree: {_describe_mismatch(a, b, ok)}")


def _check_inputs_unchanged(runner: _Outputs, images: Any) -> None:
    before = _snapshot(images)
    runner.call(images, "inputs_unchanged")
    if not _same_snapshot(before, _snapshot(images)):
        _fail("inputs_unchanged", runner.adapter, "modified its input in place (the runner reuses decoded images)")


def _check_empty(runner: _Outputs, images: Any) -> None:
    runner.call(_empty_like(images), "empty")


def _check_pickle(runner: _Outputs, images: Any, rtol: float) -> None:
    adapter = runner.adapter
    try:
        clone = pickle.loads(pickle.dumps(adapter))
    except Exception as exc:  # noqa: BLE001
        _fail("pickle", adapter, f"cannot be pickled (workers receive adapters by pickle): {type(exc).__name__}: {exc}")
    a = runner.call(images, "pickle")
    b = runner.call(images, "pickle", adapter=clone)
    ok = runner.close(a, b, rtol)
    if not ok.all():
        _fail("pickle", adapter, f"unpickled copy scores differently: {_describe_mismatch(a, b, ok)}")
    ident = getattr(adapter, "identity", None)
    if ident is not None and clone.identity() != adapter.identity():
        _fail("pickle", adapter, f"identity() changes on pickling: {adapter.identity()!r} -> {clone.identity()!r}")


_LIGHT_IMPORT_SCRIPT = """
import importlib, json, sys
importlib.import_module(sys.argv[1])
print(json.dumps(sorted(m for m in json.loads(sys.argv[2]) if m in sys.modules)))
"""


def check_light_import(adapter: Any, heavy: Sequence[str] = HEAVY_MODULES) -> None:
    """Importing the adapter's module in a fresh interpreter must not import any of ``heavy``.

    The child gets this interpreter's ``sys.path``, so adapters defined in a test module are found too. An adapter
    defined in ``__main__`` cannot be re-imported by name, and is not checked.
    """
    module = type(adapter).__module__
    if module in ("__main__", "builtins"):
        return
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if isinstance(p, str) and p)
    proc = subprocess.run(
        [sys.executable, "-c", _LIGHT_IMPORT_SCRIPT, module, json.dumps(list(heavy))],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-1:] or ["(no output)"]
        _fail("light_import", adapter, f"importing module {module!r} in a fresh interpreter failed: {tail[0]}")
    loaded = json.loads(proc.stdout.strip().splitlines()[-1])
    if loaded:
        _fail(
            "light_import",
            adapter,
            f"importing module {module!r} imports {', '.join(loaded)}; move heavy imports inside functions "
            f"so that listing adapters stays cheap",
        )


# ------------------------------------------------------------------------------------------ capability checks
def _capability_names(adapter: Any, field_name: str) -> tuple:
    from fiqa_bench.api.capabilities import CAPABILITIES

    names = getattr(getattr(adapter, "card", None), field_name, ())
    if not isinstance(names, tuple) or not all(isinstance(n, str) for n in names):
        _fail("capabilities", adapter, f"card.{field_name} must be a tuple of names, got {names!r}")
    unknown = [n for n in names if n not in CAPABILITIES]
    if unknown:
        _fail(
            "capabilities",
            adapter,
            f"card.{field_name} names unknown capabilities {unknown}; known: "
            f"{', '.join(CAPABILITIES)} (fiqa_bench.api.capabilities)",
        )
    return names


def check_method_capabilities(method: Any) -> None:
    """``needs_capabilities`` names known capabilities, and a method that needs any is given the backbone."""
    if _capability_names(method, "needs_capabilities") and not getattr(method.card, "needs_backbone", False):
        _fail(
            "capabilities",
            method,
            "card.needs_capabilities is set but needs_backbone is False: the runner would "
            "never pass the backbone whose capabilities the method needs",
        )


def check_backbone_capabilities(backbone: Any, images: Any) -> None:
    """A backbone does what its card's ``capabilities`` declare (the contracts in
    :data:`fiqa_bench.api.capabilities.CAPABILITIES`), on ``images``."""
    names = _capability_names(backbone, "capabilities")
    if not names:
        return
    n = _length(images)
    plain = np.asarray(backbone.embed(images), np.float64)
    if "raw_features" in names:
        norms = np.linalg.norm(plain, axis=1)
        if np.allclose(norms, 1.0, atol=1e-3):
            _fail("capabilities", backbone, "declares raw_features but embed() returns L2-normalised rows")
    if "stochastic" in names:
        fn = getattr(backbone, "stochastic_embed", None)
        if not callable(fn):
            _fail("capabilities", backbone, "declares stochastic but has no stochastic_embed()")
        a = fn(images, 4, 0.5, 0)
        dim = backbone.card.embedding_dim
        if not isinstance(a, np.ndarray) or a.dtype != np.float32 or a.shape != (n, 4, dim):
            _fail(
                "capabilities",
                backbone,
                f"stochastic_embed(images, 4, 0.5, 0) must return float32 ({n}, 4, {dim}), "
                f"got {getattr(a, 'dtype', type(a))} {getattr(a, 'shape', '')}",
            )
        if not np.isfinite(a).all():
            _fail("capabilities", backbone, "stochastic_embed() returned non-finite values")
        if not _rows_close(a.reshape(n * 4, -1), fn(images, 4, 0.5, 0).reshape(n * 4, -1), DETERMINISM_RTOL).all():
            _fail("capabilities", backbone, "stochastic_embed() with the same seed is not reproducible")
        single = fn(_take(images, [n - 1]), 4, 0.5, 0)
        if not _rows_close(a[n - 1], single[0], EMBEDDING_RTOL).all():
            _fail(
                "capabilities",
                backbone,
                "stochastic_embed() of an image depends on its batch (the masks must come from the seed alone)",
            )
        if np.abs(a[:, 0] - a[:, 1]).max() <= 1e-6 * max(np.abs(a).max(), 1e-12):
            _fail("capabilities", backbone, "stochastic_embed() passes are all equal: dropout is not active")
    if "layers" in names:
        for attr in ("torch_model", "to_tensor", "pixels", "normalise", "block", "mirror"):
            if not callable(getattr(backbone, attr, None)):
                _fail("capabilities", backbone, f"declares layers but has no {attr}()")
        model = backbone.torch_model()
        if getattr(model, "training", True):
            _fail("capabilities", backbone, "torch_model() must be in eval mode (BN running statistics, no dropout)")
        x = backbone.to_tensor(images)
        if tuple(x.shape[:2]) != (n, 3):
            _fail("capabilities", backbone, f"to_tensor() must give (N, 3, H, W), got {tuple(x.shape)}")
        if not np.allclose(backbone.normalise(backbone.pixels(images)).detach().numpy(), x.detach().numpy(), atol=1e-5):
            _fail("capabilities", backbone, "normalise(pixels(images)) differs from to_tensor(images)")
        blocks = tuple(getattr(backbone, "block_names", ()))
        if not blocks:
            _fail("capabilities", backbone, "declares layers but block_names is empty")
        for name in blocks:
            if name != "input" and backbone.block(name) is None:
                _fail("capabilities", backbone, f"block({name!r}) returned None")
        out = model(x).detach().numpy()
        if not getattr(backbone, "flip", False) and not _rows_close(plain, out, EMBEDDING_RTOL).all():
            _fail("capabilities", backbone, "torch_model()(to_tensor(images)) differs from embed(images)")


# ------------------------------------------------------------------------------------------ public API
class _LazyImages:
    """The images the checks share: the caller's, or synthetic ones made on first use (once).

    Every check gets its own deep copy, so an adapter that modifies its input cannot hide that (or corrupt the
    other checks' images); ``inputs_unchanged`` reports it.
    """

    def __init__(self, spec: InputSpec | None, images: Any) -> None:
        self.spec = spec
        self.images = images

    def get(self) -> Any:
        if self.images is None:
            if self.spec is None:
                raise AssertionError("no images given and the adapter's card has no input spec")
            self.images = synthetic_inputs(self.spec)
        if _length(self.images) < 2:
            raise AssertionError("the checks need at least 2 images")
        return copy.deepcopy(self.images)


def _output_checks(runner: _Outputs, lazy: _LazyImages, rtol: float) -> list[tuple[str, Check]]:
    def bound(fn: Callable[..., None], *extra: Any) -> Check:
        return lambda: fn(runner, lazy.get(), *extra)

    return [
        ("output", bound(_check_output)),
        ("finite", bound(_check_finite)),
        ("batch_equals_single", bound(_check_batch_equals_single, rtol)),
        ("order_equivariant", bound(_check_order, rtol)),
        ("deterministic", bound(_check_deterministic)),
        ("inputs_unchanged", bound(_check_inputs_unchanged)),
        ("empty", bound(_check_empty)),
        ("pickle", bound(_check_pickle, rtol)),
    ]


def _spec_of(adapter: Any) -> InputSpec | None:
    spec = getattr(getattr(adapter, "card", None), "input", None)
    return spec if isinstance(spec, InputSpec) else None


def method_checks(method: Any, images: Any = None) -> list[tuple[str, Check]]:
    """The checks for a quality method, as ``(name, check)`` pairs; ``check()`` raises ``AssertionError``.

    ``images``: inputs as the card's spec asks for them (default: :func:`synthetic_inputs`, made once on first use).
    """
    lazy = _LazyImages(_spec_of(method), images)
    runner = _Outputs(method, "method")
    return [
        ("card", lambda: check_method_card(method)),
        *_output_checks(runner, lazy, SCORE_RTOL),
        ("capabilities", lambda: check_method_capabilities(method)),
        ("light_import", lambda: check_light_import(method)),
    ]


def backbone_checks(backbone: Any, images: Any = None) -> list[tuple[str, Check]]:
    """The checks for an FR backbone (embeddings (N, card.embedding_dim), float32, finite, batch-independent)."""
    lazy = _LazyImages(_spec_of(backbone), images)
    runner = _Outputs(backbone, "backbone")
    return [
        ("card", lambda: check_backbone_card(backbone)),
        *_output_checks(runner, lazy, EMBEDDING_RTOL),
        ("capabilities", lambda: check_backbone_capabilities(backbone, lazy.get())),
        ("light_import", lambda: check_light_import(backbone)),
    ]


def adapter_checks(adapter: Any, images: Any = None) -> list[tuple[str, Check]]:
    """:func:`method_checks` or :func:`backbone_checks`, chosen by the adapter's card (or its methods)."""
    card = getattr(adapter, "card", None)
    if isinstance(card, BackboneCard) or (not isinstance(card, MethodCard) and hasattr(adapter, "embed")):
        return backbone_checks(adapter, images)
    return method_checks(adapter, images)


def _run_all(checks: list[tuple[str, Check]]) -> None:
    by_name = dict(checks)
    by_name.pop("card")()  # a broken card makes the rest meaningless: fail on it first
    for _, check in by_name.items():
        check()


def check_method(method: Any, images: Any = None) -> None:
    """Run every quality-method check; raises ``AssertionError`` naming the first that fails."""
    _run_all(method_checks(method, images))


def check_backbone(backbone: Any, images: Any = None) -> None:
    """Run every backbone check; raises ``AssertionError`` naming the first that fails."""
    _run_all(backbone_checks(backbone, images))


def parametrize_with_checks(adapters: Sequence[Any], images: Any = None) -> Callable:
    """pytest decorator: one test per (adapter, check), with ids like ``blur-batch_equals_single``.

    The decorated test takes ``adapter`` and ``check`` and calls ``check()``.
    """
    import pytest

    params, ids = [], []
    for adapter in adapters:
        name = getattr(getattr(adapter, "card", None), "name", type(adapter).__name__)
        for check_name, check in adapter_checks(adapter, images):
            params.append((adapter, check))
            ids.append(f"{name}-{check_name}")
    return pytest.mark.parametrize(("adapter", "check"), params, ids=ids)
