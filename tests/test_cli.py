"""The command line as a user meets it: clean one-line errors, run -> results + report, report from a folder."""

from __future__ import annotations

import json

from click.testing import CliRunner

from fiqa_bench.cli.main import main


def test_unknown_method_is_one_clear_line(tmp_path):
    res = CliRunner().invoke(
        main,
        [
            "run",
            "--method",
            "blurr",
            "--fr",
            "dlib",
            "--protocol",
            "lfw-templates",
            "--data",
            str(tmp_path),
            "--out",
            str(tmp_path / "o"),
        ],
    )
    assert res.exit_code == 2
    assert "Did you mean 'blur'" in res.output and "Traceback" not in res.output


def test_unknown_protocol_folder_is_named(tmp_path):
    res = CliRunner().invoke(
        main, ["run", "--method", "blur", "--fr", "dlib", "--protocol", str(tmp_path), "--out", str(tmp_path / "o")]
    )
    assert res.exit_code == 2 and str(tmp_path) in res.output and "not a benchmark folder" in res.output


def test_run_writes_results_and_report(small_bench, mbf, tmp_path, isolated_cache):
    out = tmp_path / "out"
    args = ["run", "--method", "jpeg", "--fr", mbf, "--protocol", str(small_bench), "--out", str(out), "--no-progress"]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    assert "TPR@FPR" in res.output
    (result,) = out.glob("mini__jpeg__*__top1__*.json")
    record = json.loads(result.read_text())
    assert record["schema_version"] == 2 and record["protocol"]["name"] == "mini"
    assert (out / "report.md").is_file() and (out / "report.html").is_file()
    assert "| jpeg |" in (out / "report.md").read_text().replace("**", "")

    report_dir = tmp_path / "rep"
    res = CliRunner().invoke(main, ["report", str(out), "--out", str(report_dir)])
    assert res.exit_code == 0, res.output
    assert (report_dir / "report.md").read_text() == (out / "report.md").read_text()


def test_a_run_beside_results_of_another_preparation_keeps_its_results_and_warns(
    small_bench, mbf, tmp_path, isolated_cache
):
    """The folder holds a run on an earlier preparation of the same benchmark (other image list): the new run is
    done and written (exit 0); the report, which cannot mix the two, is left as it was, with a one-line warning."""
    out = tmp_path / "out"
    common = ["--fr", mbf, "--protocol", str(small_bench), "--out", str(out), "--no-progress"]
    assert CliRunner().invoke(main, ["run", "--method", "jpeg", *common]).exit_code == 0
    (old,) = out.glob("mini__jpeg__*.json")
    record = json.loads(old.read_text())
    record["protocol"]["faces_sha256"] = "0" * 64  # as if prepared elsewhere
    old.write_text(json.dumps(record))
    before = (out / "report.md").read_text()
    res = CliRunner().invoke(main, ["run", "--method", "blur", *common])
    assert res.exit_code == 0, res.output
    assert len(list(out.glob("mini__blur__*.json"))) == 1 and "results:" in res.output
    warning = [line for line in res.output.splitlines() if line.startswith("warning:")]
    assert len(warning) == 1 and f"the report in {out} was not refreshed" in warning[0]
    assert "different protocol versions or pair/face lists" in warning[0] and "own folder" in warning[0]
    assert (out / "report.md").read_text() == before
    res = CliRunner().invoke(main, ["report", str(out)])  # the report command still refuses, naming the files
    assert res.exit_code == 2 and "faces 000000000000: 1 file(s)" in res.output and old.name in res.output


def test_list_kind_filter():
    res = CliRunner().invoke(main, ["list", "--kind", "protocol"])
    assert "lfw-templates" in res.output and "backbones" not in res.output
