"""Face recognition backbones: turn faces into embeddings that the runner compares by cosine.

* ``onnx:PATH`` (:mod:`.onnx_arcface`): any ArcFace-style ONNX model on 112x112 aligned crops;
* ``r50``, ``r100``, ``mbf`` (:mod:`.zoo`): insightface's public ArcFace releases, fetched and verified;
* ``dlib`` (:mod:`.dlib_resnet`): dlib's 128-d ResNet with its own 5-point chip extraction.

Modules here keep onnxruntime and dlib imports inside functions, so listing backbones stays cheap.
"""

from __future__ import annotations

import os

THREADS_ENV = "FIQA_BENCH_THREADS"


def thread_count() -> int:
    """Threads for inference: ``$FIQA_BENCH_THREADS`` when set (e.g. to share a machine), else every CPU."""
    env = os.environ.get(THREADS_ENV, "").strip()
    if env:
        try:
            n = int(env)
        except ValueError:
            raise ValueError(f"{THREADS_ENV} must be a positive integer, got {env!r}") from None
        if n < 1:
            raise ValueError(f"{THREADS_ENV} must be a positive integer, got {env!r}")
        return n
    return os.cpu_count() or 1
