"""Datasets on first use: LFW is fetched from its public mirror; licence-gated sets get exact instructions.

LFW comes from the same figshare files (and pinned sha256) that scikit-learn's ``fetch_lfw_pairs`` uses, is
verified, and is extracted into a temporary folder that is renamed into place only when complete, so an
interrupted first run never leaves a half-extracted dataset that looks valid.
"""

from __future__ import annotations

import os
import re
import shutil
import tarfile
import tempfile
from pathlib import Path

from fiqa_bench.data import atomic, paths
from fiqa_bench.data.download import download
from fiqa_bench.errors import ChecksumError, DownloadError, FiqaBenchError, ProtocolFormatError

# scikit-learn sklearn/datasets/_lfw.py: ARCHIVE and TARGETS["pairs.txt"]
LFW_ARCHIVE_URL = "https://ndownloader.figshare.com/files/5976018"
LFW_ARCHIVE_SHA256 = "055f7d9c632d7370e6fb4afc7468d40f970c34a80d4c6f50ffec63f5a8d536c0"
LFW_PAIRS_URL = "https://ndownloader.figshare.com/files/5976006"
LFW_PAIRS_SHA256 = "ea42330c62c92989f9d7c03237ed5d591365e89b3e649747777b70e692dc1592"

_LFW_IMAGE = re.compile(r"^(?P<name>.+)_(?P<num>\d{4})\.jpg$")
_COMPLETE = ".complete"


def datasets_dir() -> Path:
    return paths.cache_dir() / "datasets"


def _lfw_layout_ok(root: Path) -> bool:
    """``root/pairs.txt`` and ``root/lfw/<Name>/<Name>_NNNN.jpg`` (checked on the first person folder found)."""
    images = root / "lfw"
    if not ((root / "pairs.txt").is_file() and images.is_dir()):
        return False
    for person in images.iterdir():
        if person.is_dir():
            for f in person.iterdir():
                m = _LFW_IMAGE.match(f.name)
                if m and m.group("name") == person.name:
                    return True
    return False


def _lfw_layout_text(root: Path) -> str:
    return (
        f"expected {root}/lfw/<Name>/<Name>_<NNNN>.jpg and {root}/pairs.txt (the layout of the official "
        f"lfw.tgz with View-2 pairs.txt beside it), or the same one folder level down"
    )


def lfw_root(data: str | os.PathLike | None = None, *, progress: bool = True) -> Path:
    """The folder holding ``lfw/`` and ``pairs.txt``.

    With ``data``: validate its layout (also accepted one level down). Without: use (or first download and
    verify) the public LFW archive and pairs.txt into ``cache_dir()/datasets/lfw``.
    """
    if data is not None:
        data = Path(data).expanduser()
        if not data.is_dir():
            raise ProtocolFormatError(data, None, f"LFW folder not found; {_lfw_layout_text(data)}")
        if _lfw_layout_ok(data):
            return data
        below = sorted(p for p in data.iterdir() if p.is_dir() and _lfw_layout_ok(p))
        if len(below) == 1:
            return below[0]
        if len(below) > 1:
            raise ProtocolFormatError(data, None, f"several LFW copies below it: {', '.join(map(str, below))}")
        raise ProtocolFormatError(data, None, f"not an LFW folder; {_lfw_layout_text(data)}")
    return _fetch_lfw(progress=progress)


def _lfw_manual(root: Path) -> str:
    return (
        f"To install LFW by hand: download {LFW_ARCHIVE_URL} (lfw.tgz, sha256 {LFW_ARCHIVE_SHA256}) and "
        f"extract it into {root} so that {root}/lfw/<Name>/<Name>_<NNNN>.jpg exist; download {LFW_PAIRS_URL} "
        f"(pairs.txt, sha256 {LFW_PAIRS_SHA256}) to {root}/pairs.txt; then create the empty file "
        f"{root}/{_COMPLETE}. Or pass the folder of an existing LFW copy as the data path."
    )


def _fetch_lfw(progress: bool) -> Path:
    root = datasets_dir() / "lfw"
    if (root / _COMPLETE).is_file() and _lfw_layout_ok(root):
        return root
    root.mkdir(parents=True, exist_ok=True)
    archive = root / "lfw.tgz"
    try:
        if not (root / "pairs.txt").is_file():
            download(LFW_PAIRS_URL, root / "pairs.txt", LFW_PAIRS_SHA256, progress=progress)
        if not (root / "lfw").is_dir():
            download(LFW_ARCHIVE_URL, archive, LFW_ARCHIVE_SHA256, progress=progress)
            _extract_lfw(archive, root)
    except (DownloadError, ChecksumError) as exc:
        raise type(exc)(f"could not fetch LFW: {exc}\n{_lfw_manual(root)}") from exc
    if not _lfw_layout_ok(root):
        raise ProtocolFormatError(
            root,
            None,
            f"LFW download did not produce the expected layout; {_lfw_layout_text(root)}\n{_lfw_manual(root)}",
        )
    atomic.write_text(root / _COMPLETE, "")
    archive.unlink(missing_ok=True)
    return root


def _extract_lfw(archive: Path, root: Path) -> None:
    """Extract into a temporary folder beside the target; rename ``lfw/`` into place only when complete."""
    tmp = Path(tempfile.mkdtemp(prefix=".lfw-extract-", dir=root))
    try:
        try:
            with tarfile.open(archive, "r:*") as tar:
                _safe_extract(tar, tmp)
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise FiqaBenchError(
                f"{archive}: cannot extract ({type(exc).__name__}: {exc}); delete it and retry"
            ) from exc
        if not (tmp / "lfw").is_dir():
            raise ProtocolFormatError(archive, None, "archive has no top-level lfw/ folder")
        os.replace(tmp / "lfw", root / "lfw")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _safe_extract(tar: tarfile.TarFile, dest: Path) -> None:
    """Regular files and folders only, never outside ``dest`` (an archive is untrusted input)."""
    if hasattr(tarfile, "data_filter"):
        tar.extractall(dest, filter="data")
        return
    base = dest.resolve()
    members = []
    for m in tar.getmembers():
        target = (dest / m.name).resolve()
        if base not in target.parents and target != base:
            raise FiqaBenchError(f"refusing archive member outside the target folder: {m.name}")
        if m.isfile() or m.isdir():
            members.append(m)
    tar.extractall(dest, members=members)


# -- licence-gated datasets ---------------------------------------------------------------------------------


def _ijb_help(name: str) -> str:
    upper, lower = name.upper(), name.lower()
    root = datasets_dir() / upper
    return f"""{upper} is licence-gated: fiqa-bench cannot download it.
1. Request the {upper} images from NIST (https://www.nist.gov/programs-projects/face-challenges; the IARPA Janus
   Benchmark licence agreement). fiqa-bench reads the insightface evaluation layout of {upper}: insightface's
   IJB evaluation release (recognition/_evaluation_/ijb in github.com/deepinsight/insightface, 'IJB_release')
   holds it, with the same licence terms.
2. Put these files in one folder, e.g. {root}:
     {root}/loose_crop/<image>.jpg                      (the {upper} loose face crops)
     {root}/meta/{lower}_face_tid_mid.txt               (image, template id, media id per line)
     {root}/meta/{lower}_template_pair_label.txt        (template 1, template 2, label per line)
     {root}/meta/{lower}_name_5pts_score.txt            (image, 5 landmarks x/y, detector score per line)
3. Run with that folder as the data path (--data {root})."""


def _ytf_help() -> str:
    root = datasets_dir() / "YTF"
    return f"""YouTube Faces (YTF) is licence-gated: fiqa-bench cannot download it.
1. Fill in the request form at https://www.cs.tau.ac.il/~wolf/ytfaces/ and download YouTubeFaces.tar.gz
   (frame_images_DB; the aligned_images_DB is not used).
2. Put the frames and the split file in one folder, e.g. {root}:
     {root}/frame_images_DB/<name>/<video>/<frame>.jpg  (one folder per video, e.g. Aaron_Eckhart/0/)
     {root}/splits.txt                                  (the 5,000-pair, 10-split list)
   or, instead of splits.txt, {root}/meta_and_splits.mat from the same download.
3. Run with that folder as the data path (--data {root})."""


GATED = {"ijbb": lambda: _ijb_help("ijbb"), "ijbc": lambda: _ijb_help("ijbc"), "ytf": _ytf_help}


def gated_dataset_help(name: str) -> str:
    """Exact instructions for a dataset that cannot be downloaded automatically (``ijbb``, ``ijbc``, ``ytf``)."""
    key = name.lower().replace("-", "")
    if key not in GATED:
        raise KeyError(f"no instructions for {name!r}; known: {', '.join(sorted(GATED))}")
    return GATED[key]()
