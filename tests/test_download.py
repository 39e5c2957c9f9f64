"""Downloads against a real HTTP server on 127.0.0.1: good, corrupt, short, missing and unreachable files."""

from __future__ import annotations

import hashlib
import os

import pytest

from _http_server import Route, serve, unused_port_url
from fiqa_bench.api.cards import Weights
from fiqa_bench.data import download as dl
from fiqa_bench.errors import ChecksumError, DownloadError

PAYLOAD = os.urandom(3 * (1 << 20) + 123)  # several chunks
PAYLOAD_SHA = hashlib.sha256(PAYLOAD).hexdigest()


def leftovers(folder):
    """Every file under ``folder`` (temp files included), as relative names."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


@pytest.fixture()
def server():
    routes = {
        "/good.bin": Route(PAYLOAD),
        "/short.bin": Route(PAYLOAD[:1000], content_length=len(PAYLOAD)),
        "/forbidden.bin": Route(b"no", status=403),
    }
    with serve(routes) as base:
        yield base


def test_good_file_is_verified_and_renamed(server, tmp_path):
    dest = tmp_path / "w" / "model.onnx"
    assert dl.download(f"{server}/good.bin", dest, PAYLOAD_SHA, progress=False) == dest
    assert dest.read_bytes() == PAYLOAD
    assert leftovers(tmp_path) == ["w/model.onnx"]


def test_wrong_checksum_names_url_expected_and_got(server, tmp_path):
    dest = tmp_path / "model.onnx"
    with pytest.raises(ChecksumError) as err:
        dl.download(f"{server}/good.bin", dest, "0" * 64, progress=False)
    msg = str(err.value)
    assert f"{server}/good.bin" in msg and "0" * 64 in msg and PAYLOAD_SHA in msg
    assert leftovers(tmp_path) == []


def test_interrupted_transfer_leaves_nothing(server, tmp_path):
    dest = tmp_path / "model.onnx"
    with pytest.raises(DownloadError, match=f"1000 of {len(PAYLOAD)} bytes"):
        dl.download(f"{server}/short.bin", dest, None, progress=False)  # no checksum: length check alone
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("path, code", [("/missing.bin", 404), ("/forbidden.bin", 403)])
def test_http_error(server, tmp_path, path, code):
    with pytest.raises(DownloadError, match=f"HTTP {code}"):
        dl.download(f"{server}{path}", tmp_path / "x.bin", PAYLOAD_SHA, progress=False)
    assert leftovers(tmp_path) == []


def test_no_server_listening(tmp_path):
    with pytest.raises(DownloadError, match="cannot connect"):
        dl.download(unused_port_url(), tmp_path / "x.bin", PAYLOAD_SHA, progress=False, timeout=5)
    assert leftovers(tmp_path) == []


def test_existing_dest_survives_failed_download(server, tmp_path):
    dest = tmp_path / "model.onnx"
    dest.write_bytes(b"old")
    with pytest.raises(ChecksumError):
        dl.download(f"{server}/good.bin", dest, "f" * 64, progress=False)
    assert dest.read_bytes() == b"old" and leftovers(tmp_path) == ["model.onnx"]


# -- resolve_weights ------------------------------------------------------------------------------------------


def test_resolve_downloads_into_cache_once(server, isolated_cache, monkeypatch):
    monkeypatch.delenv("FIQA_BENCH_MODELS", raising=False)
    monkeypatch.delenv("FIQA_SHARED", raising=False)
    w = Weights("model.onnx", url=f"{server}/good.bin", sha256=PAYLOAD_SHA)
    path = dl.resolve_weights(w, progress=False)
    assert path == isolated_cache / "weights" / "model.onnx" and path.read_bytes() == PAYLOAD
    # second call: found in the cache, not downloaded again (the server is not even asked)
    w_offline = Weights("model.onnx", url=unused_port_url(), sha256=PAYLOAD_SHA)
    assert dl.resolve_weights(w_offline, progress=False) == path


@pytest.mark.parametrize("route", ["/short.bin", "/missing.bin", None])
def test_resolve_failure_says_what_to_fetch_and_where(server, isolated_cache, monkeypatch, route):
    monkeypatch.delenv("FIQA_BENCH_MODELS", raising=False)
    monkeypatch.delenv("FIQA_SHARED", raising=False)
    url = f"{server}{route}" if route else unused_port_url()
    w = Weights("model.onnx", url=url, sha256=PAYLOAD_SHA)
    with pytest.raises(DownloadError) as err:
        dl.resolve_weights(w, progress=False)
    msg = str(err.value)
    assert f"Fetch {url} by hand" in msg
    assert str(isolated_cache / "weights" / "model.onnx") in msg
    assert "FIQA_BENCH_MODELS" in msg and PAYLOAD_SHA in msg
    assert [p for p in leftovers(isolated_cache) if not p.startswith("weights/.verified")] == []


def test_resolve_finds_file_in_models_env(tmp_path, isolated_cache, monkeypatch):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    (b / "model.onnx").write_bytes(PAYLOAD)
    monkeypatch.setenv("FIQA_BENCH_MODELS", os.pathsep.join([str(a), str(b)]))
    w = Weights("model.onnx", url=unused_port_url(), sha256=PAYLOAD_SHA)
    assert dl.resolve_weights(w, progress=False) == b / "model.onnx"
    assert not (isolated_cache / "weights" / "model.onnx").exists()


def test_resolve_finds_shared_model(shared, isolated_cache, monkeypatch):
    monkeypatch.delenv("FIQA_BENCH_MODELS", raising=False)
    monkeypatch.setenv("FIQA_SHARED", str(shared))
    w = Weights(
        "scrfd_500m_kps.onnx",
        url=unused_port_url(),
        sha256="5e4447f50245bbd7966bd6c0fa52938c61474a04ec7def48753668a9d8b4ea3a",
    )
    assert dl.resolve_weights(w, progress=False) == shared / "models" / "scrfd" / "scrfd_500m_kps.onnx"


def test_corrupted_cached_file_is_detected(isolated_cache, monkeypatch):
    monkeypatch.delenv("FIQA_BENCH_MODELS", raising=False)
    monkeypatch.delenv("FIQA_SHARED", raising=False)
    cached = isolated_cache / "weights" / "model.onnx"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(PAYLOAD)
    w = Weights("model.onnx", url=unused_port_url(), sha256=PAYLOAD_SHA)
    assert dl.resolve_weights(w) == cached  # verified and stamped
    corrupt = bytearray(PAYLOAD)
    corrupt[100] ^= 0xFF
    cached.write_bytes(bytes(corrupt))  # same size, new mtime: the stamp no longer applies
    with pytest.raises(ChecksumError, match=str(cached)):
        dl.resolve_weights(w)


def test_verification_is_remembered_by_size_and_mtime(tmp_path, isolated_cache, monkeypatch):
    f = tmp_path / "model.onnx"
    f.write_bytes(PAYLOAD)
    dl.verify_local(f, PAYLOAD_SHA)
    calls = []
    monkeypatch.setattr(dl, "sha256_of", lambda p: calls.append(p) or PAYLOAD_SHA)
    dl.verify_local(f, PAYLOAD_SHA)
    assert calls == []  # stamp matched: not re-hashed
    st = f.stat()
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    dl.verify_local(f, PAYLOAD_SHA)
    assert calls == [f]


def test_local_file_with_wrong_hash_names_the_file(tmp_path, isolated_cache, monkeypatch):
    d = tmp_path / "models"
    d.mkdir()
    (d / "model.onnx").write_bytes(b"not the model")
    monkeypatch.setenv("FIQA_BENCH_MODELS", str(d))
    with pytest.raises(ChecksumError, match=str(d / "model.onnx")):
        dl.resolve_weights(Weights("model.onnx", url=unused_port_url(), sha256=PAYLOAD_SHA))
