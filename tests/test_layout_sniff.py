"""Each layout reader recognises its folders (``sniff``) from the file names its writer, ``fiqa-bench prepare``,
takes from it: a folder prepared in one layout is recognised by that reader only, with or without its
``benchmark.json``, and a folder in neither layout by none."""

from __future__ import annotations

import json
import shutil

import pytest

from fiqa_bench.data.layout_files import LAYOUT_FILE
from fiqa_bench.layouts import sniff_layout
from fiqa_bench.protocols.ijb import IJBLayout
from fiqa_bench.protocols.ytf import YTFLayout


@pytest.mark.shared
def test_prepared_folders_are_recognised_by_their_reader(small_bench, small_ytf, tmp_path):
    assert (IJBLayout.sniff(small_bench), YTFLayout.sniff(small_bench)) == (True, False)
    assert (IJBLayout.sniff(small_ytf), YTFLayout.sniff(small_ytf)) == (False, True)
    assert sniff_layout(small_bench) == "ijb" and sniff_layout(small_ytf) == "ytf"
    for src, layout in ((small_bench, "ijb"), (small_ytf, "ytf")):  # without benchmark.json: the file names
        copy = tmp_path / layout
        shutil.copytree(src / "meta", copy / "meta")
        for f in ("splits.txt",):
            if (src / f).is_file():
                shutil.copy(src / f, copy / f)
        assert not (copy / LAYOUT_FILE).exists() and sniff_layout(copy) == layout


def test_declared_layout_wins_and_unknown_folders_are_none(tmp_path):
    (tmp_path / "meta").mkdir()
    (tmp_path / "meta" / "x_face_tid_mid.txt").write_text("")
    assert sniff_layout(tmp_path) == "ijb"
    (tmp_path / LAYOUT_FILE).write_text(json.dumps({"layout": "ytf"}))  # the writer's declaration decides
    assert sniff_layout(tmp_path) == "ytf" and not IJBLayout.sniff(tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert sniff_layout(empty) is None


def test_open_protocol_uses_the_readers_and_a_bad_benchmark_json_is_a_file_line_error(tmp_path):
    from fiqa_bench.errors import FiqaBenchError, ProtocolFormatError
    from fiqa_bench.pipeline.runner import open_protocol

    (tmp_path / "meta").mkdir()
    (tmp_path / "meta" / "x_face_tid_mid.txt").write_text("a.jpg 1 1\n")
    (tmp_path / LAYOUT_FILE).write_text("{bad")
    protocol = open_protocol(str(tmp_path))
    assert isinstance(protocol, IJBLayout)
    with pytest.raises(ProtocolFormatError, match=r"benchmark.json:1: not valid JSON"):
        protocol.load()
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FiqaBenchError, match="not a benchmark folder"):
        open_protocol(str(empty))
