"""The run command is generated from RunConfig: one source of truth for names, types, ranges and help; errors are
one line with exit code 2; -v logs; python -m fiqa_bench is the same command; --json prints the record."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import fields

import pytest
from click.testing import CliRunner

from fiqa_bench.cli.main import main, run_cmd
from fiqa_bench.config import RunConfig


def test_every_run_config_field_is_an_option_with_its_help():
    flags = {opt for p in run_cmd.params for opt in p.opts}
    helps = {p.name: p.help for p in run_cmd.params}
    for f in fields(RunConfig):
        if not f.metadata.get("cli", True):
            continue
        flag = f.metadata.get("flag") or "--" + f.name.replace("_", "-")
        assert flag in flags, f.name
        assert helps[f.name] == f.metadata["help"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--batch-size", "0"], "Invalid value for '--batch-size': 0 is not in the range 1<=x<=65536"),
        (["--k", "0"], "Invalid value for '--k': 0 is not in the range x>=1"),
        (["--selection", "best"], "Invalid value for '--selection'"),
        (["--edc-fnmr", "2"], "Invalid value for '--edc-fnmr'"),
    ],
)
def test_bad_values_exit_2_with_one_line(args, message):
    res = CliRunner().invoke(main, ["run", "--protocol", "p", "--fr", "dlib", *args])
    assert res.exit_code == 2
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: fiqa-bench run: ") and message in lines[0]


def test_run_config_checks_ranges_outside_the_cli():
    from fiqa_bench.errors import OptionError

    with pytest.raises(OptionError, match="--batch-size must be >= 1"):
        RunConfig(protocol="p", backbone="dlib", batch_size=0)
    with pytest.raises(OptionError, match="selection must be one of"):
        RunConfig(protocol="p", backbone="dlib", selection="best")


def test_python_dash_m_is_the_same_command():
    out = subprocess.run([sys.executable, "-m", "fiqa_bench", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "Usage: fiqa-bench" in out.stdout and "rescore" in out.stdout


@pytest.mark.shared
def test_verbose_logs_the_stages_and_json_prints_the_record(small_bench, mbf, tmp_path, isolated_cache):
    args = [
        "run",
        "--method",
        "blur",
        "--fr",
        mbf,
        "--protocol",
        str(small_bench),
        "--out",
        str(tmp_path / "o"),
        "--no-progress",
    ]
    res = subprocess.run([sys.executable, "-m", "fiqa_bench", "-v", *args, "--json"], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    record = json.loads(res.stdout)
    assert record["schema_version"] == 2 and record["method"]["name"] == "blur"
    for stage in ("score:", "select: top1 kept 12 of 48", "embed:", "compare: 66 pairs scored", "measure:"):
        assert stage in res.stderr
    quiet = subprocess.run([sys.executable, "-m", "fiqa_bench", "-q", *args], capture_output=True, text=True)
    assert quiet.returncode == 0 and "INFO" not in quiet.stderr
