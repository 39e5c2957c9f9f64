"""Proof by extension: what another package adds through the entry-point groups works like a built-in.

Each test installs a throwaway distribution the way pip leaves one (a module and a ``*.dist-info`` with its entry
points, on the import path) and uses it through the suite's ordinary commands, with nothing in fiqa-bench changed.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from fiqa_bench.config import RunConfig
from fiqa_bench.pipeline.runner import run

EXECUTOR = """
from fiqa_bench.executors.local import LocalExecutor

CALLS = []


class CountingExecutor(LocalExecutor):
    '''The local executor, counting the rows each stage is asked for.'''

    name = "counting"

    def stage(self, stage, rows, skipped):
        CALLS.append((stage, len(rows)))
        return super().stage(stage, rows, skipped)
"""


#: (a) A metric with one option -- the false non-match rate at a fixed cosine threshold -- and a protocol reporting it
#: beside the built-in metrics: the IJB-layout reader under another name, its card listing one metric more.
FNMR_MODULE = """
from dataclasses import replace

import numpy as np

from fiqa_bench.results.fields import Num
from fiqa_bench.metrics.base import Metric, MetricOption
from fiqa_bench.protocols.ijb import IJBLayout

THRESHOLD = MetricOption("fnmr_threshold", 0.35, "FNMR@threshold: the cosine a genuine pair must reach.",
                         min=-1.0, max=1.0)


def _compute(data, options):
    genuine = data.scores[data.labels == 1].astype(np.float64)
    t = options.fnmr_threshold
    return {"fnmr": float(np.count_nonzero(genuine < t) / genuine.shape[0]), "threshold": t,
            "genuine": int(genuine.shape[0])}


METRIC = Metric(key="fnmr_at", title="FNMR (%)", label="FNMR", joiner="@", needs=frozenset({"scores", "labels"}),
                higher_is_better=False, compute=_compute, columns=lambda value: [("threshold", value.get("fnmr"))],
                options=(THRESHOLD,), bounds=(0.0, 1.0), required=("fnmr",),
                value_fields={"fnmr": Num(0, 1), "threshold": Num(-1, 1), "genuine": Num(0, integer=True)},
                description="false non-match rate of the genuine pairs at a fixed cosine threshold")


class IJBWithFNMR(IJBLayout):
    card = replace(IJBLayout.card, name="ijb-fnmr", metrics=IJBLayout.card.metrics + ("fnmr_at",))
"""

#: (b) A protocol of a new kind -- a plain list of photo pairs -- scored by its own metric, the equal error rate.
PAIR_LIST_MODULE = """
from pathlib import Path

import numpy as np
import pandas as pd

from fiqa_bench.api import Protocol
from fiqa_bench.pipeline.benchmark import Benchmark, empty_landmarks
from fiqa_bench.api.cards import ProtocolCard
from fiqa_bench.errors import FiqaBenchError
from fiqa_bench.results.fields import Num
from fiqa_bench.metrics.base import Metric


def _eer(data, options):
    '''The least max(FNMR, FMR) over the thresholds t (every score; a pair is accepted when its score >= t).'''
    scores = data.scores.astype(np.float64)
    genuine, impostor, t = np.sort(scores[data.labels == 1]), np.sort(scores[data.labels == 0]), np.unique(scores)
    fnmr = np.searchsorted(genuine, t, side="left") / genuine.shape[0]
    fmr = (impostor.shape[0] - np.searchsorted(impostor, t, side="left")) / impostor.shape[0]
    i = int(np.argmin(np.maximum(fnmr, fmr)))
    return {"eer": float(max(fnmr[i], fmr[i])), "threshold": float(t[i])}


METRIC = Metric(key="pair_eer", title="EER (%)", label="EER", joiner=" ", needs=frozenset({"scores", "labels"}),
                higher_is_better=False, compute=_eer, columns=lambda value: [("value", value.get("eer"))],
                bounds=(0.0, 1.0), required=("eer",), value_fields={"eer": Num(0, 1), "threshold": Num()},
                description="equal error rate: the least max(FNMR, FMR) over the thresholds")


class PairList(Protocol):
    '''pairs.txt in a folder: one comparison a line, "path_a path_b"; a photo's folder is its identity.'''

    card = ProtocolCard(name="pair-list", version="1", summary="a plain list of photo pairs; equal error rate",
                        licence="that of the photos", metric="pair-eer", metrics=("pair_eer",),
                        data="a folder with pairs.txt and the photos it names")

    def load(self):
        if self.root is None:
            raise FiqaBenchError("pair-list: give the folder with --data")
        listed = pd.read_csv(self.root / "pairs.txt", sep=" ", header=None, names=["a", "b"], dtype=str)
        paths = sorted(set(listed["a"]) | set(listed["b"]))
        group = {p: i for i, p in enumerate(paths)}
        who = {p: Path(p).parent.name for p in paths}
        n = len(paths)
        faces = pd.DataFrame({"path": paths, "identity": [who[p] for p in paths], "group": np.arange(n),
                              "media": np.arange(n), "face_score": np.full(n, np.nan, np.float32),
                              **empty_landmarks(n)})
        pairs = pd.DataFrame({"a": listed["a"].map(group).to_numpy(np.int64),
                              "b": listed["b"].map(group).to_numpy(np.int64),
                              "label": (listed["a"].map(who) == listed["b"].map(who)).to_numpy(np.int8),
                              "fold": np.full(len(listed), -1, np.int8)})
        return Benchmark(name=self.card.name, root=self.root, faces=faces, pairs=pairs, metric=self.card.metric,
                         metrics=self.card.metrics, version=self.card.version, source_files=[self.root / "pairs.txt"])
"""


def install(site: Path, dist: str, modules: dict[str, str], entry_points: dict[str, dict[str, str]]) -> Path:
    """Write ``modules`` ({file name: source}) and a ``<dist>-0.1.dist-info`` declaring ``entry_points`` ({group:
    {name: "module:attr"}}) into ``site``, a folder for the import path."""
    site.mkdir(parents=True, exist_ok=True)
    for name, source in modules.items():
        (site / name).write_text(textwrap.dedent(source))
    info = site / f"{dist}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    lines = []
    for group, entries in entry_points.items():
        lines.append(f"[{group}]")
        lines += [f"{name} = {target}" for name, target in entries.items()]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
    return site


@pytest.fixture()
def plugin_site(tmp_path, monkeypatch):
    """A folder on the import path (this process and the commands it starts) for throwaway distributions."""
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]))
    yield site
    for name in [m for m in sys.modules if m.startswith("ext_fiqa_")]:
        del sys.modules[name]


@pytest.mark.shared
def test_an_executor_from_another_package_runs_the_stages(plugin_site, small_bench, mbf, tmp_path, isolated_cache):
    install(
        plugin_site,
        "ext_fiqa_executor",
        {"ext_fiqa_executor.py": EXECUTOR},
        {"fiqa_bench.executors": {"counting": "ext_fiqa_executor:CountingExecutor"}},
    )
    help_text = subprocess.run(
        [sys.executable, "-m", "fiqa_bench", "run", "--help"], capture_output=True, text=True, check=True
    ).stdout
    assert "counting" in " ".join(help_text.split())  # one of --executor's choices, like local and ray

    def config(executor: str, out: str) -> RunConfig:
        return RunConfig(
            protocol=str(small_bench),
            backbone=mbf,
            method="blur",
            out=str(tmp_path / out),
            progress=False,
            bootstrap=0,
            executor=executor,
        )

    _, local = run(config("local", "local"))
    import ext_fiqa_executor  # type: ignore[import-not-found]

    assert ext_fiqa_executor.CALLS == []
    _, counted = run(config("counting", "counting"))
    # the quality stage saw every image, the embed stage the kept ones: the run went through the plugin
    assert ext_fiqa_executor.CALLS == [
        ("quality", local["counts"]["images"]),
        ("embed", local["counts"]["images_embedded"]),
    ]
    assert counted["metrics"] == local["metrics"]
    assert json.loads(json.dumps(counted["counts"]))["images"] == local["counts"]["images"]


def fiqa(*args, check: bool = True) -> subprocess.CompletedProcess:
    """``fiqa-bench ARGS`` in a new interpreter, as a user runs it (the plugins on its PYTHONPATH: the run command's
    options are built from RunConfig when the CLI is imported)."""
    done = subprocess.run(
        [sys.executable, "-m", "fiqa_bench", *map(str, args)], capture_output=True, text=True, check=False
    )
    if check and done.returncode != 0:
        raise AssertionError(
            f"fiqa-bench {' '.join(map(str, args))}: exit {done.returncode}\n{done.stdout}{done.stderr}"
        )
    return done


def pairs_of(raw: Path) -> list[tuple[float, int]]:
    """(score, label) of every scored pair of a run, from its .npz."""
    with np.load(raw) as z:
        return [(float(s), int(label)) for s, label in zip(z["pair_scores"], z["pair_labels"])]


def fnmr_reference(raw: Path, threshold: float) -> tuple[float, int]:
    """(FNMR at ``threshold``, genuine pairs), counted one pair at a time."""
    genuine = [s for s, label in pairs_of(raw) if label == 1]
    return sum(1 for s in genuine if s < threshold) / len(genuine), len(genuine)


def eer_reference(raw: Path) -> tuple[float, float]:
    """(EER, the lowest threshold reaching it): every score tried as the threshold, the errors counted one by one."""
    pairs = pairs_of(raw)
    genuine = [s for s, label in pairs if label == 1]
    impostor = [s for s, label in pairs if label == 0]
    best = None
    for t in sorted({s for s, _ in pairs}):
        worst = max(sum(1 for s in genuine if s < t) / len(genuine), sum(1 for s in impostor if s >= t) / len(impostor))
        if best is None or worst < best[0]:
            best = (worst, t)
    return best


def table(md: str, heading: str) -> tuple[list[str], dict[str, list[str]]]:
    """(column titles, {method: cells}) of the report table under ``## heading`` (marks of best/tie removed)."""
    lines = md.splitlines()
    start = next(i for i, line in enumerate(lines) if line == f"## {heading}")
    head = next(i for i in range(start, len(lines)) if lines[i].startswith("| FR model |"))

    def split(line):
        return [c.strip().replace("**", "").replace(" †", "") for c in line.strip("|").split("|")]

    rows = {}
    for line in lines[head + 2 :]:
        if not line.startswith("|"):
            break
        cells = split(line)
        rows[cells[1]] = cells
    return split(lines[head]), rows


def leaderboard_data(site: Path) -> dict:
    page = (site / "index.html").read_text(encoding="utf-8")
    return json.loads(
        re.search(r'<script type="application/json" id="leaderboard-data">(.*?)</script>', page, re.DOTALL).group(1)
    )


@pytest.mark.shared
def test_a_metric_with_an_option_from_another_package(plugin_site, small_bench, mbf, tmp_path, isolated_cache):
    """(a) One module declares a metric with one option and a protocol that reports it; its entry points are all
    fiqa-bench sees of it. The option is a setting of `run`, recorded, in the file name's digest, honoured by
    `rescore`; the metric is a column of the report, the leaderboard and `compare`."""
    install(
        plugin_site,
        "ext_fiqa_fnmr",
        {"ext_fiqa_fnmr.py": FNMR_MODULE},
        {
            "fiqa_bench.metrics": {"fnmr_at": "ext_fiqa_fnmr:METRIC"},
            "fiqa_bench.protocols": {"ijb-fnmr": "ext_fiqa_fnmr:IJBWithFNMR"},
        },
    )
    from fiqa_bench.config import run_settings
    from fiqa_bench.protocols.ijb import IJBLayout
    from fiqa_bench.results.record import settings_digest

    help_text = " ".join(fiqa("run", "--help").stdout.split())
    assert (
        "--fnmr-threshold FLOAT FNMR@threshold: the cosine a genuine pair must reach. [default: 0.35; -1.0<=x<=1.0]"
    ) in help_text

    runs, other = tmp_path / "runs", tmp_path / "other"
    common = ["--protocol", f"ijb-fnmr:{small_bench}", "--fr", mbf, "--bootstrap", "200", "--no-progress"]
    fiqa("run", *common, "--method", "blur", "--out", runs)
    fiqa("run", *common, "--method", "random", "--out", runs)
    printed = fiqa("run", *common, "--method", "blur", "--fnmr-threshold", "0.5", "--out", other).stdout
    (blur,), (rand,), (blur_b,) = runs.glob("*__blur__*.json"), runs.glob("*__random__*.json"), other.glob("*.json")
    rec, rec_r, rec_b = (json.loads(p.read_text()) for p in (blur, rand, blur_b))

    # the results file: the metric's value (against the pairs counted one by one) and its option, recorded
    expected = {}
    for path, r, t in ((blur, rec, 0.35), (rand, rec_r, 0.35), (blur_b, rec_b, 0.5)):
        fnmr, genuine = fnmr_reference(path.with_suffix(".npz"), t)
        expected[path] = fnmr
        value = r["metrics"]["fnmr_at"]
        assert r["protocol"]["metrics"] == [*IJBLayout.card.metrics, "fnmr_at"]
        assert {k: value[k] for k in ("fnmr", "threshold", "genuine")} == {
            "fnmr": fnmr,
            "threshold": t,
            "genuine": genuine,
        }
        assert value["bootstrap"]["B"] == 200 and list(value["intervals"]) == ["threshold"]
        assert r["config"]["fnmr_threshold"] == t and r["settings"]["metric_options"] == {"fnmr_threshold": t}
    assert (expected[blur], expected[blur_b]) == (1 / 6, 3 / 6)  # 6 genuine pairs: the option changes the number
    lo, hi = rec_b["metrics"]["fnmr_at"]["intervals"]["threshold"]
    assert f"  FNMR: threshold=50.00% [{100 * lo:.2f}, {100 * hi:.2f}]" in printed.splitlines()

    # the file name's digest covers the option: the same run with another threshold is another file
    assert {k: v for k, v in rec["settings"].items() if k != "metric_options"} == {
        k: v for k, v in rec_b["settings"].items() if k != "metric_options"
    }
    assert blur.name == f"mini__blur__onnx-mobilefacenet.onnx__top1__{settings_digest(rec['settings'])}.json"
    assert blur_b.name == f"mini__blur__onnx-mobilefacenet.onnx__top1__{settings_digest(rec_b['settings'])}.json"
    assert blur.name != blur_b.name
    # ...and only of the runs that report the metric: installing it renames no other protocol's results
    cfg = RunConfig(protocol="mini", backbone=mbf, method="blur", out=str(tmp_path / "x"), progress=False)
    protocol = {"name": "mini", "pairs_sha256": rec["protocol"]["pairs_sha256"]}
    assert "metric_options" not in run_settings(
        cfg, True, False, False, {}, None, {**protocol, "metrics": list(IJBLayout.card.metrics)}
    )
    assert run_settings(cfg, True, False, False, {}, None, {**protocol, "metrics": rec["protocol"]["metrics"]})[
        "metric_options"
    ] == {"fnmr_threshold": 0.35}

    # rescore recomputes with the recorded option; a tampered option or value is caught
    done = fiqa("rescore", blur, rand, blur_b, "--no-progress")
    assert done.stdout.count("every metric agrees with its .npz") == 3
    tampered = tmp_path / "tampered"
    for change, line in (
        (("config", "fnmr_threshold", 0.35), "  metrics.fnmr_at.threshold: file 0.5, recomputed 0.35"),
        (("metrics", "fnmr_at", "fnmr"), "  metrics.fnmr_at.fnmr: file 0.25, recomputed 0.5"),
    ):
        shutil.rmtree(tampered, ignore_errors=True)
        tampered.mkdir()
        for suffix in (".json", ".npz"):
            shutil.copy(blur_b.with_suffix(suffix), tampered)
        data = json.loads(blur_b.read_text())
        if change[0] == "config":
            data["config"][change[1]] = change[2]
        else:
            data["metrics"]["fnmr_at"]["fnmr"] = 0.25
        (tampered / blur_b.name).write_text(json.dumps(data))
        done = fiqa("rescore", tampered / blur_b.name, "--no-progress", check=False)
        assert done.returncode == 1 and line in done.stdout.splitlines(), done.stdout

    # the report (written by run into its folder): a column of the metric, each run's value
    titles, rows = table((runs / "report.md").read_text(encoding="utf-8"), "mini — selection: top1")
    j = titles.index("FNMR@threshold (%) ↓")
    for method, r, path in (("blur", rec, blur), ("random", rec_r, rand)):
        lo, hi = r["metrics"]["fnmr_at"]["intervals"]["threshold"]
        assert rows[method][j] == f"{100 * expected[path]:.2f} [{100 * lo:.2f}, {100 * hi:.2f}]"

    # the leaderboard: the metric's column on the board, each row's value
    fiqa("leaderboard", runs, "--out", tmp_path / "board")
    (board,) = leaderboard_data(tmp_path / "board")["boards"]
    col = next(c for c in board["columns"] if c["metric"] == "fnmr_at")
    assert (col["id"], col["title"], col["higher_is_better"], col["unit"]) == (
        "fnmr_at:threshold",
        "FNMR@threshold",
        False,
        "%",
    )
    assert {row["method"]: row["cells"]["fnmr_at:threshold"]["v"] for row in board["rows"]} == {
        "blur": expected[blur],
        "random": expected[rand],
    }

    # compare: the metric's column, paired between the two methods
    text = fiqa("compare", runs).stdout
    assert any(line.startswith("  FNMR@threshold (lower is better): ") for line in text.splitlines())
    assert any(re.match(rf"    blur +{100 * expected[blur]:.2f}  vs random ", line) for line in text.splitlines())
    (group,) = json.loads(fiqa("compare", runs, "--json").stdout)
    col = next(c for c in group["columns"] if c["metric"] == "fnmr_at")
    assert (col["column"], col["values"]) == ("FNMR@threshold", {"random": expected[rand], "blur": expected[blur]})


@pytest.mark.shared
def test_a_protocol_of_a_new_kind_runs_with_its_own_metric(plugin_site, copy_identities, mbf, tmp_path, isolated_cache):
    """(b) One module declares a protocol of its own kind (a plain pair list) and the one metric it reports (EER):
    run, the results file, rescore, the report and compare work with nothing else."""
    install(
        plugin_site,
        "ext_fiqa_pairs",
        {"ext_fiqa_pairs.py": PAIR_LIST_MODULE},
        {
            "fiqa_bench.protocols": {"pair-list": "ext_fiqa_pairs:PairList"},
            "fiqa_bench.metrics": {"pair_eer": "ext_fiqa_pairs:METRIC"},
        },
    )
    photos = copy_identities(tmp_path / "photos", 4, 4)
    names = sorted(p.relative_to(photos).as_posix() for p in photos.rglob("*.jpg"))
    (photos / "pairs.txt").write_text("".join(f"{a} {b}\n" for a, b in itertools.combinations(names, 2)))
    out = tmp_path / "runs"
    common = [
        "--protocol",
        "pair-list",
        "--data",
        photos,
        "--fr",
        mbf,
        "--bootstrap",
        "200",
        "--no-progress",
        "--out",
        out,
    ]
    printed = fiqa("run", *common).stdout
    fiqa("run", *common, "--method", "blur")
    (none,), (blur,) = out.glob("pair-list__none__*.json"), out.glob("pair-list__blur__*.json")
    recs = {path: json.loads(path.read_text()) for path in (none, blur)}

    eer, threshold = eer_reference(none.with_suffix(".npz"))
    for path, rec in recs.items():
        assert (rec["protocol"]["metric"], rec["protocol"]["metrics"], list(rec["metrics"])) == (
            "pair-eer",
            ["pair_eer"],
            ["pair_eer"],
        )
        assert (rec["counts"]["genuine"], rec["counts"]["impostor"]) == (4 * 6, 120 - 4 * 6)
        value = rec["metrics"]["pair_eer"]
        assert eer_reference(path.with_suffix(".npz")) == (eer, threshold)  # one image per group: same pairs
        assert (value["eer"], value["threshold"]) == (eer, threshold)
        assert value["bootstrap"]["B"] == 200 and list(value["intervals"]) == ["value"]
    lo, hi = recs[none]["metrics"]["pair_eer"]["intervals"]["value"]
    assert f"  EER: value={100 * eer:.2f}% [{100 * lo:.2f}, {100 * hi:.2f}]" in printed.splitlines()

    done = fiqa("rescore", none, blur, "--no-progress")
    assert done.stdout.count("every metric agrees with its .npz") == 2

    md = (out / "report.md").read_text(encoding="utf-8")
    titles, rows = table(md, "pair-list — selection: top1")
    assert titles == ["FR model", "Method", "EER value (%) ↓"]
    assert "points" not in md  # no metric of this kind says what one pair is worth: nothing claims it
    for method, path in (("none", none), ("blur", blur)):
        lo, hi = recs[path]["metrics"]["pair_eer"]["intervals"]["value"]
        assert rows[method][2] == f"{100 * eer:.2f} [{100 * lo:.2f}, {100 * hi:.2f}]"

    text = fiqa("compare", out).stdout.splitlines()
    assert text[0] == (
        "pair-list | onnx:mobilefacenet.onnx | top1: 2 runs, 24 genuine / 96 impostor pairs; paired 95% "
        "bootstrap over subjects, B=200"
    )
    assert text[1].startswith("  EER value (lower is better): ")
