"""LFW on first use (against a real local HTTP server with a tiny generated archive) and gated-set help."""

from __future__ import annotations

import hashlib
import io
import tarfile

import pytest

from _http_server import Route, serve, unused_port_url
from fiqa_bench.data import datasets
from fiqa_bench.errors import ChecksumError, DownloadError, FiqaBenchError, ProtocolFormatError

PAIRS = b"1\t1\nAaron_Tiny\t1\t2\nAaron_Tiny\t1\tBetty_Tiny\t1\n"


def make_tgz(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


TGZ = make_tgz(
    {
        "lfw/Aaron_Tiny/Aaron_Tiny_0001.jpg": b"\xff\xd8jpeg-1\xff\xd9",
        "lfw/Aaron_Tiny/Aaron_Tiny_0002.jpg": b"\xff\xd8jpeg-2\xff\xd9",
        "lfw/Betty_Tiny/Betty_Tiny_0001.jpg": b"\xff\xd8jpeg-3\xff\xd9",
    }
)


def sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def point_at(monkeypatch, base, tgz=TGZ, tgz_path="/lfw.tgz", tgz_sha=None):
    monkeypatch.setattr(datasets, "LFW_ARCHIVE_URL", f"{base}{tgz_path}")
    monkeypatch.setattr(datasets, "LFW_ARCHIVE_SHA256", tgz_sha or sha(tgz))
    monkeypatch.setattr(datasets, "LFW_PAIRS_URL", f"{base}/pairs.txt")
    monkeypatch.setattr(datasets, "LFW_PAIRS_SHA256", sha(PAIRS))


def files_under(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else []


def test_lfw_downloaded_verified_and_extracted_once(isolated_cache, monkeypatch):
    routes = {"/lfw.tgz": Route(TGZ), "/pairs.txt": Route(PAIRS)}
    with serve(routes) as base:
        point_at(monkeypatch, base)
        root = datasets.lfw_root(None, progress=False)
    assert root == isolated_cache / "datasets" / "lfw"
    assert (root / "pairs.txt").read_bytes() == PAIRS
    assert (root / "lfw" / "Betty_Tiny" / "Betty_Tiny_0001.jpg").read_bytes() == b"\xff\xd8jpeg-3\xff\xd9"
    assert not (root / "lfw.tgz").exists()  # archive removed once extracted
    assert not [p for p in root.iterdir() if p.name.startswith(".lfw-extract-")]
    # second call: nothing is fetched (the server is gone and the URL points nowhere)
    monkeypatch.setattr(datasets, "LFW_ARCHIVE_URL", unused_port_url())
    assert datasets.lfw_root(None, progress=False) == root


def test_wrong_archive_checksum_leaves_no_dataset(isolated_cache, monkeypatch):
    with serve({"/lfw.tgz": Route(TGZ), "/pairs.txt": Route(PAIRS)}) as base:
        point_at(monkeypatch, base, tgz_sha="0" * 64)
        with pytest.raises(ChecksumError) as err:
            datasets.lfw_root(None, progress=False)
    assert "0" * 64 in str(err.value) and "by hand" in str(err.value)
    root = isolated_cache / "datasets" / "lfw"
    assert files_under(root) == ["pairs.txt"]  # verified pairs kept; no archive, no lfw/, no temp


def test_interrupted_archive_download_says_what_to_do(isolated_cache, monkeypatch):
    routes = {"/lfw.tgz": Route(TGZ[:100], content_length=len(TGZ)), "/pairs.txt": Route(PAIRS)}
    with serve(routes) as base:
        point_at(monkeypatch, base)
        with pytest.raises(DownloadError) as err:
            datasets.lfw_root(None, progress=False)
    msg = str(err.value)
    root = isolated_cache / "datasets" / "lfw"
    assert f"{base}/lfw.tgz" in msg and f"{root}/pairs.txt" in msg
    assert "lfw" not in files_under(root)


def test_no_network(isolated_cache, monkeypatch):
    point_at(monkeypatch, unused_port_url().rsplit("/", 1)[0])
    with pytest.raises(DownloadError, match="To install LFW by hand"):
        datasets.lfw_root(None, progress=False)
    assert files_under(isolated_cache / "datasets" / "lfw") == []


@pytest.mark.parametrize("bad", ["corrupt", "no_lfw_folder", "escape"])
def test_bad_archive_with_matching_hash_is_rejected(isolated_cache, monkeypatch, bad):
    tgz = {
        "corrupt": TGZ[: len(TGZ) // 2],
        "no_lfw_folder": make_tgz({"faces/A/A_0001.jpg": b"x"}),
        "escape": make_tgz({"../evil.txt": b"x", "lfw/A/A_0001.jpg": b"x"}),
    }[bad]
    with serve({"/lfw.tgz": Route(tgz), "/pairs.txt": Route(PAIRS)}) as base:
        point_at(monkeypatch, base, tgz=tgz)
        with pytest.raises(FiqaBenchError):
            datasets.lfw_root(None, progress=False)
    root = isolated_cache / "datasets" / "lfw"
    assert not (root / "lfw").exists() and not (root.parent / "evil.txt").exists()
    assert not [p for p in files_under(root) if p.startswith(".lfw-extract-")]


def test_given_folder_is_validated(tmp_path):
    (tmp_path / "lfw" / "Aaron_Tiny").mkdir(parents=True)
    (tmp_path / "lfw" / "Aaron_Tiny" / "Aaron_Tiny_0001.jpg").write_bytes(b"x")
    with pytest.raises(ProtocolFormatError, match="pairs.txt"):
        datasets.lfw_root(tmp_path)  # no pairs.txt
    (tmp_path / "pairs.txt").write_bytes(PAIRS)
    assert datasets.lfw_root(tmp_path) == tmp_path
    with pytest.raises(ProtocolFormatError, match="not found"):
        datasets.lfw_root(tmp_path / "missing")


def test_shared_lfw_accepted_directly_and_one_level_down(shared):
    lfw = shared / "data" / "lfw"
    assert datasets.lfw_root(lfw) == lfw
    assert datasets.lfw_root(shared / "data") == lfw
    with pytest.raises(ProtocolFormatError, match="not an LFW folder"):
        datasets.lfw_root(shared / "models")


@pytest.mark.parametrize(
    "name, needed",
    [
        (
            "ijbb",
            [
                "loose_crop/",
                "meta/ijbb_face_tid_mid.txt",
                "meta/ijbb_template_pair_label.txt",
                "meta/ijbb_name_5pts_score.txt",
                "datasets/IJBB",
            ],
        ),
        (
            "IJB-C",
            [
                "loose_crop/",
                "meta/ijbc_face_tid_mid.txt",
                "meta/ijbc_template_pair_label.txt",
                "meta/ijbc_name_5pts_score.txt",
            ],
        ),
        ("ytf", ["frame_images_DB/<name>/<video>/", "splits.txt", "meta_and_splits.mat"]),
    ],
)
def test_gated_help_names_every_file(isolated_cache, name, needed):
    text = datasets.gated_dataset_help(name)
    for item in needed:
        assert item in text


def test_gated_help_unknown():
    with pytest.raises(KeyError, match="ijbb"):
        datasets.gated_dataset_help("cfp")
