"""Without a data folder, LFW comes from the development data (``$FIQA_SHARED/data/lfw``) when it is there, and
only otherwise from the download cache."""

from __future__ import annotations

import pytest

from fiqa_bench.errors import FiqaBenchError
from fiqa_bench.protocols.lfw import LFW


def _no_download(data=None, **kw):
    raise FiqaBenchError("download attempted")


@pytest.mark.shared
def test_shared_lfw_is_used_when_no_root_is_given(shared, monkeypatch):
    import fiqa_bench.data.datasets as datasets

    monkeypatch.setattr(datasets, "lfw_root", _no_download)
    monkeypatch.setenv("FIQA_SHARED", str(shared))
    bench = LFW().load()
    assert len(bench.pairs) == 6000 and str(bench.root) == str(shared / "data" / "lfw")


def test_without_shared_lfw_the_download_path_is_taken(tmp_path, monkeypatch):
    import fiqa_bench.data.datasets as datasets

    monkeypatch.setattr(datasets, "lfw_root", _no_download)
    monkeypatch.setenv("FIQA_SHARED", str(tmp_path))  # a shared folder without data/lfw
    with pytest.raises(FiqaBenchError, match="download attempted"):
        LFW().load()
