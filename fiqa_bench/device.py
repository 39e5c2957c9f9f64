"""Where models run: ``cpu`` (default) or ``cuda`` (``--device``).

One process-wide setting, because onnxruntime sessions are created deep inside adapters (backbones, quality
networks) that know nothing of the run: :func:`onnx_providers` is what every session is created with. A run on
``cuda`` is checked before any work (:func:`check_device`), so a machine without a GPU or without the provider
fails with one line instead of silently running on the CPU. Only onnxruntime models move to the GPU; the face
detector (OpenCV YuNet) and dlib stay on the CPU.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from fiqa_bench.errors import DeviceError, MissingDependencyError

DEVICES = ("cpu", "cuda")
CUDA_PROVIDER = "CUDAExecutionProvider"

_device = "cpu"


def current() -> str:
    """The device onnxruntime sessions are created for in this process."""
    return _device


def set_device(device: str) -> None:
    global _device
    if device not in DEVICES:
        raise DeviceError(f"--device must be one of {', '.join(DEVICES)}, got {device!r}")
    _device = device


@contextlib.contextmanager
def using(device: str) -> Iterator[None]:
    """Create sessions for ``device`` inside the block (the previous device afterwards)."""
    previous = _device
    set_device(device)
    try:
        yield
    finally:
        set_device(previous)


def onnx_providers() -> list[str]:
    """Execution providers for a new onnxruntime session: CUDA first on ``cuda`` (the CPU still runs the few
    operators CUDA lacks), else CPU only."""
    return [CUDA_PROVIDER, "CPUExecutionProvider"] if _device == "cuda" else ["CPUExecutionProvider"]


def check_device(device: str, *, torch: bool = False) -> None:
    """Raise :class:`DeviceError` (one line, before any work) when ``device`` cannot be used here: ``cuda`` needs
    onnxruntime's CUDA provider (``fiqa-bench[gpu]``: onnxruntime-gpu) and, with ``torch=True`` (training), a
    CUDA build of torch that sees a GPU."""
    if device not in DEVICES:
        raise DeviceError(f"--device must be one of {', '.join(DEVICES)}, got {device!r}")
    if device == "cpu":
        return
    if torch:
        try:
            import torch as _torch
        except ImportError as exc:
            raise MissingDependencyError("training needs torch: pip install 'fiqa-bench[train]'") from exc
        if not _torch.cuda.is_available():
            build = getattr(_torch.version, "cuda", None)
            why = "no CUDA GPU is visible" if build else f"torch {_torch.__version__} is a CPU-only build"
            raise DeviceError(f"--device cuda: {why}; train with --device cpu or on a machine with a GPU")
        return
    import onnxruntime as ort

    available = ort.get_available_providers()
    if CUDA_PROVIDER not in available:
        raise DeviceError(
            f"--device cuda: onnxruntime has no {CUDA_PROVIDER} (providers: {', '.join(available)}); "
            f"install the GPU build: pip install 'fiqa-bench[gpu]' (onnxruntime-gpu, replacing "
            f"onnxruntime), on a machine with an NVIDIA GPU and CUDA"
        )
    if not _cuda_device_present():
        raise DeviceError(
            "--device cuda: onnxruntime-gpu is installed but no NVIDIA GPU is visible "
            "(nvidia-smi finds none); use --device cpu"
        )


def _cuda_device_present() -> bool:
    """Whether the NVIDIA driver reports a GPU (onnxruntime-gpu lists its provider even where there is none)."""
    import ctypes

    try:
        lib = ctypes.CDLL("libcuda.so.1")
    except OSError:
        return False
    count = ctypes.c_int(0)
    if lib.cuInit(0) != 0 or lib.cuDeviceGetCount(ctypes.byref(count)) != 0:
        return False
    return count.value > 0
