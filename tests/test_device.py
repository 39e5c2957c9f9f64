"""``--device``: onnxruntime sessions on CUDA and training on torch.cuda where a GPU is present; where none is
(this machine, CI), ``--device cuda`` fails with one line and exit code 2 before any work. GPU tests are marked
``gpu`` and skipped with the reason here."""

from __future__ import annotations

import time

import numpy as np
import pytest
from click.testing import CliRunner

from fiqa_bench import device
from fiqa_bench.cli.main import main
from fiqa_bench.errors import DeviceError


def _cuda_usable() -> str | None:
    """None where ``--device cuda`` works for onnxruntime, else why not."""
    try:
        device.check_device("cuda")
    except DeviceError as exc:
        return str(exc)
    return None


def _torch_cuda_usable() -> str | None:
    try:
        device.check_device("cuda", torch=True)
    except Exception as exc:  # noqa: BLE001 - DeviceError, or torch missing
        return str(exc)
    return None


NO_GPU = _cuda_usable()
NO_TORCH_GPU = _torch_cuda_usable()


def _one_error_line(output: str) -> str:
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: ")
    return lines[0]


def test_providers_follow_the_device():
    assert device.current() == "cpu"
    assert device.onnx_providers() == ["CPUExecutionProvider"]
    with device.using("cuda"):
        assert device.onnx_providers() == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert device.onnx_providers() == ["CPUExecutionProvider"]
    with pytest.raises(DeviceError, match="--device must be one of cpu, cuda"):
        device.set_device("tpu")
    device.check_device("cpu")  # the CPU is always there


@pytest.mark.skipif(NO_GPU is None, reason="a GPU is present: the no-GPU error cannot appear")
def test_run_on_cuda_without_a_gpu_is_one_line_before_any_work(small_bench, mbf, tmp_path, isolated_cache):
    out = tmp_path / "out"
    res = CliRunner().invoke(
        main,
        ["run", "-p", str(small_bench), "--fr", mbf, "-m", "blur", "--device", "cuda", "-o", str(out), "--no-progress"],
    )
    assert res.exit_code == 2
    line = _one_error_line(res.output)
    assert "--device cuda" in line and ("CUDAExecutionProvider" in line or "no NVIDIA GPU" in line)
    assert "fiqa-bench[gpu]" in line or "--device cpu" in line
    assert not list(out.glob("*.json"))  # no results
    assert not (isolated_cache / "quality").exists() and not (isolated_cache / "embeddings").exists()


@pytest.mark.skipif(NO_TORCH_GPU is None, reason="torch sees a GPU: the no-GPU error cannot appear")
def test_train_on_cuda_without_a_gpu_is_one_line_before_reading_the_dataset(tmp_path):
    empty = tmp_path / "not-a-training-set"
    empty.mkdir()  # reading it would fail with another error: the device is checked first
    res = CliRunner().invoke(main, ["train", str(empty), "-o", str(tmp_path / "q.onnx"), "--device", "cuda"])
    assert res.exit_code == 2
    line = _one_error_line(res.output)
    assert "--device cuda" in line
    assert not (tmp_path / "q.onnx").exists()


@pytest.mark.skipif(NO_TORCH_GPU is None, reason="torch sees a GPU: the no-GPU error cannot appear")
def test_train_api_on_cuda_without_a_gpu_raises():
    pytest.importorskip("torch", reason="the train extra is not installed")
    from fiqa_bench.training.train import train

    class Tiny:  # never read: the device is checked before the data
        images = np.zeros((4, 64, 64, 3), np.uint8)
        labels = np.zeros(4)
        identities = np.array(["a", "a", "b", "b"])

    with pytest.raises(DeviceError, match="--device cuda"):
        train(Tiny(), device="cuda", epochs=1, progress=False)


# ------------------------------------------------------------------------------------------------ on a GPU
@pytest.mark.gpu
@pytest.mark.shared
@pytest.mark.skipif(NO_GPU is not None, reason=f"no GPU for onnxruntime here: {NO_GPU}")
def test_run_on_cuda_matches_cpu_and_reports_img_per_s(small_bench, mbf, tmp_path, monkeypatch, capsys):
    from fiqa_bench.config import RunConfig
    from fiqa_bench.pipeline.runner import run

    def one(dev: str):
        monkeypatch.setenv("FIQA_BENCH_CACHE", str(tmp_path / f"cache-{dev}"))
        cfg = RunConfig(
            protocol=str(small_bench),
            backbone=mbf,
            method="tinyfq",
            out=str(tmp_path / dev),
            progress=False,
            bootstrap=0,
            device=dev,
        )
        t = time.perf_counter()
        path, record = run(cfg)
        with np.load(path.with_suffix(".npz")) as z:
            raw = {k: z[k] for k in z.files}
        return record, raw, time.perf_counter() - t

    cpu, cpu_raw, _ = one("cpu")
    gpu, gpu_raw, seconds = one("cuda")
    assert gpu["settings"]["device"] == "cuda" and "device" not in cpu["settings"]
    assert gpu["counts"]["images_scored_new"] == cpu["counts"]["images_scored_new"] == cpu["counts"]["images"]
    # GPU kernels change the last bits of a score or an embedding, nothing more
    np.testing.assert_allclose(gpu_raw["image_quality"], cpu_raw["image_quality"], rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(gpu_raw["pair_scores"], cpu_raw["pair_scores"], rtol=1e-3, atol=1e-3)
    with capsys.disabled():
        print(
            f"\n--device cuda: {cpu['counts']['images']} images, tinyfq + MobileFaceNet, "
            f"{cpu['counts']['images'] / seconds:.1f} img/s end to end"
        )


@pytest.mark.gpu
@pytest.mark.skipif(NO_GPU is not None, reason=f"no GPU for onnxruntime here: {NO_GPU}")
def test_tinyfq_session_runs_on_the_cuda_provider():
    from fiqa_bench import registry

    with device.using("cuda"):
        method = registry.create("method", "tinyfq")
        session = method._load()
        assert session.get_providers()[0] == "CUDAExecutionProvider"
        crops = np.random.default_rng(0).integers(0, 256, (256, *[method.size] * 2, 3), dtype=np.uint8)
        method.score(crops)
        t = time.perf_counter()
        scores = method.score(crops)
        rate = len(crops) / (time.perf_counter() - t)
    cpu = registry.create("method", "tinyfq").score(crops)
    np.testing.assert_allclose(scores, cpu, rtol=1e-3, atol=1e-4)
    print(f"tinyfq on CUDA: {rate:.0f} img/s (batch {method.batch_size})")


@pytest.mark.gpu
@pytest.mark.skipif(NO_TORCH_GPU is not None, reason=f"no GPU for torch here: {NO_TORCH_GPU}")
def test_train_on_cuda_returns_a_cpu_model_close_to_cpu_training():
    from fiqa_bench.training.train import train

    rng = np.random.default_rng(0)

    class Set:
        images = rng.integers(0, 256, (64, 64, 64, 3), dtype=np.uint8)
        labels = rng.random(64)
        identities = np.repeat(np.arange(16).astype(str), 4)

    kw = dict(epochs=1, batch_size=16, progress=False, val_fraction=0.25)
    gpu = train(Set(), device="cuda", **kw)
    cpu = train(Set(), device="cpu", **kw)
    assert next(gpu["model"].parameters()).device.type == "cpu"
    assert abs(gpu["history"][0]["train_loss"] - cpu["history"][0]["train_loss"]) < 1e-3
