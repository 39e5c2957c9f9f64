"""``prepare_benchmark`` on a small tree of real celeba-wild photos, checked with plain-Python parsers.

The tree: 5 identities of 6 real photos (one named with a space), one flat grey photo (no face), one broken
file, one identity with 3 photos (below min_images), one with 4 photos of which only 3 have a face (too few
for 3 templates), and a text file.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import shutil
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np
import pytest

from fiqa_bench.data import degradations
from fiqa_bench.data import prepare as P
from fiqa_bench.errors import FiqaBenchError

T = 3  # templates per identity in the small tree: 5 identities x C(3, 2) = 15 same pairs >= 10 YTF folds


def tree_hashes(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def lines(path: Path) -> list[list[str]]:
    text = path.read_text()
    assert text.endswith("\n") and "\r" not in text
    return [line.split(" ") for line in text.splitlines()]


@pytest.fixture(scope="module")
def env(shared, tmp_path_factory):
    """Source tree + one prepared benchmark (layout both, degradations on); cache kept out of ~/.cache."""
    base = tmp_path_factory.mktemp("prepare")
    old_cache = os.environ.get("FIQA_BENCH_CACHE")
    os.environ["FIQA_BENCH_CACHE"] = str(base / "user-cache")
    celeba = shared / "data" / "celeba-wild" / "images"
    folders = [d for d in sorted(celeba.iterdir()) if len(list(d.glob("*.jpg"))) >= 6][:7]
    src = base / "src"
    names = [d.name for d in folders[:4]] + ["Jane Doe"]
    for folder, ident in zip(folders[:5], names):
        (src / ident).mkdir(parents=True)
        for f in sorted(folder.glob("*.jpg"))[:6]:
            shutil.copy(f, src / ident / f.name)
    cv2.imwrite(str(src / names[0] / "zz_flat.jpg"), np.full((160, 160, 3), 128, np.uint8))
    (src / names[1] / "broken.jpg").write_bytes(b"this is not a jpeg")
    (src / names[1] / "notes.txt").write_text("not an image\n")
    (src / "small").mkdir()
    for f in sorted(folders[5].glob("*.jpg"))[:3]:
        shutil.copy(f, src / "small" / f.name)
    (src / "fewfaces").mkdir()
    for f in sorted(folders[6].glob("*.jpg"))[:3]:
        shutil.copy(f, src / "fewfaces" / f.name)
    cv2.imwrite(str(src / "fewfaces" / "flat.png"), np.full((100, 100, 3), 90, np.uint8))
    src_before = tree_hashes(src)
    out = base / "a"
    summary = P.prepare_benchmark(
        src, out, name="mini", seed=0, layout="both", templates_per_identity=T, degrade_fraction=0.4, progress=False
    )
    yield {"base": base, "src": src, "out": out, "summary": summary, "names": names, "src_before": src_before}
    if old_cache is None:
        os.environ.pop("FIQA_BENCH_CACHE", None)
    else:
        os.environ["FIQA_BENCH_CACHE"] = old_cache


def read_ijb(out: Path, name: str) -> dict:
    """An independent reader of the four meta files (plain split)."""
    tid_mid = lines(out / "meta" / f"{name}_face_tid_mid.txt")
    pairs = lines(out / "meta" / f"{name}_template_pair_label.txt")
    pts = lines(out / "meta" / f"{name}_name_5pts_score.txt")
    tid_sid = lines(out / "meta" / f"{name}_tid_sid.txt")
    assert all(len(r) == 3 for r in tid_mid) and all(len(r) == 3 for r in pairs)
    assert all(len(r) == 12 for r in pts) and all(len(r) == 2 for r in tid_sid)
    return {
        "images": [r[0] for r in tid_mid],
        "template": {r[0]: int(r[1]) for r in tid_mid},
        "media": [int(r[2]) for r in tid_mid],
        "pairs": [(int(a), int(b), int(c)) for a, b, c in pairs],
        "pts": pts,
        "subject": {int(t): int(s) for t, s in tid_sid},
    }


def test_ijb_files_are_consistent(env):
    out = env["out"]
    ijb = read_ijb(out, "mini")
    images = ijb["images"]
    assert sorted(images) == sorted(os.listdir(out / "loose_crop"))
    assert len(set(images)) == len(images)
    assert ijb["media"] == list(range(1, len(images) + 1))  # each photo its own media
    templates = defaultdict(list)
    for img in images:
        templates[ijb["template"][img]].append(img)
    assert sorted(templates) == list(range(1, 5 * T + 1)) == sorted(ijb["subject"])
    by_subject = defaultdict(list)
    for t, s in ijb["subject"].items():
        by_subject[s].append(t)
    assert sorted(len(v) for v in by_subject.values()) == [T] * 5
    assert all(len(v) >= 2 for v in templates.values())
    # every template's images come from its subject's folder
    subjects = json.loads((out / "benchmark.json").read_text())["subjects"]
    for t, imgs in templates.items():
        prefix = P.safe_name(subjects[str(ijb["subject"][t])]) + "_"
        assert all(i.startswith(prefix) for i in imgs), (t, imgs)
    assert "Jane Doe" in subjects.values() and any(i.startswith("Jane_Doe_") for i in images)


def test_pairs_are_all_genuine_and_all_impostor_template_pairs(env):
    ijb = read_ijb(env["out"], "mini")
    sid = ijb["subject"]
    pairs = ijb["pairs"]
    assert len(set((a, b) for a, b, _ in pairs)) == len(pairs)
    assert all(a < b for a, b, _ in pairs)
    assert all(label == int(sid[a] == sid[b]) for a, b, label in pairs)
    n = len(sid)
    assert len(pairs) == n * (n - 1) // 2  # 'all': every template pair appears once
    assert sum(label for *_, label in pairs) == 5 * T * (T - 1) // 2
    assert pairs == sorted(pairs)
    counts = env["summary"]["counts"]
    assert counts["genuine_pairs"] == 15 and counts["impostor_pairs"] == counts["impostor_pairs_possible"] == 90


def test_landmark_file_format_and_plausibility(env):
    out = env["out"]
    ijb = read_ijb(out, "mini")
    pts = ijb["pts"]
    assert [r[0] for r in pts] == ijb["images"]
    num2 = re.compile(r"-?\d+\.\d{2}")
    for row in pts:
        assert all(num2.fullmatch(v) for v in row[1:11]), row
        assert re.fullmatch(r"\d\.\d{4}", row[11]), row
        lm = np.array(row[1:11], float).reshape(5, 2)
        h, w = cv2.imread(str(out / "loose_crop" / row[0])).shape[:2]
        assert (lm[:, 0] > -0.1 * w).all() and (lm[:, 0] < 1.1 * w).all() and (lm[:, 1] < 1.1 * h).all()
        assert lm[0, 0] < lm[1, 0] and lm[3, 0] < lm[4, 0]  # image-left eye / mouth corner first
        assert lm[:2, 1].mean() < lm[2, 1] < lm[3:, 1].mean()  # eyes above nose above mouth


def test_clean_images_are_byte_identical_copies(env):
    out, src = env["out"], env["src"]
    degraded = {row["file"] for row in csv.DictReader(open(out / "degradations.csv"))}
    report = json.loads((out / "prepare_report.json").read_text())
    subjects = json.loads((out / "benchmark.json").read_text())["subjects"]
    ijb = read_ijb(out, "mini")
    checked = 0
    for img in ijb["images"]:
        if img in degraded:
            continue
        ident = subjects[str(ijb["subject"][ijb["template"][img]])]
        prefix = P.safe_name(ident) + "_"
        assert img.startswith(prefix)
        source = src / ident / img[len(prefix) :]
        assert (out / "loose_crop" / img).read_bytes() == source.read_bytes()
        checked += 1
    assert checked == env["summary"]["counts"]["images"] - len(degraded) > 0
    assert report["counts"]["images"] == len(ijb["images"])


def test_degradations_are_recorded_replayable_and_leave_a_clean_image(env):
    out, src = env["out"], env["src"]
    rows = list(csv.DictReader(open(out / "degradations.csv", newline="")))
    assert rows and set(rows[0]) == {"file", "source", "degradation", "level", "params", "landmarks"}
    ijb = read_ijb(out, "mini")
    score = {r[0]: float(r[11]) for r in ijb["pts"]}
    for row in rows:
        record = {"name": row["degradation"], "level": row["level"], "params": json.loads(row["params"])}
        assert row["level"] in degradations.LEVELS
        replay = degradations.apply_record(cv2.imread(str(src / row["source"]), cv2.IMREAD_COLOR), record)
        ok, buf = cv2.imencode(".jpg", replay, [cv2.IMWRITE_JPEG_QUALITY, 95])
        assert buf.tobytes() == (out / "loose_crop" / row["file"]).read_bytes(), row
        assert row["landmarks"] in ("detected", "clean-source")
        assert (score[row["file"]] == 0.0) == (row["landmarks"] == "clean-source")
    # each template keeps at least one clean photo; 0.4 of 2 photos rounds to 1 degraded
    degraded = {r["file"] for r in rows}
    templates = defaultdict(list)
    for img in ijb["images"]:
        templates[ijb["template"][img]].append(img in degraded)
    for flags in templates.values():
        assert not all(flags)
        assert sum(flags) == min(len(flags) - 1, int(np.floor(0.4 * len(flags) + 0.5)))


def test_report_counts_every_photo(env):
    out, names = env["out"], env["names"]
    report = json.loads((out / "prepare_report.json").read_text())
    c = report["counts"]
    assert c["photos_found"] == 5 * 6 + 2 + 3 + 4
    assert c["photos_found"] == (
        c["photos_in_small_identities"]
        + c["photos_no_face"]
        + c["photos_unreadable"]
        + c["photos_with_face_in_excluded_identities"]
        + c["images"]
    )
    reasons = {r["source"]: r["reason"] for r in report["photos_without_face"]}
    assert reasons[f"{names[0]}/zz_flat.jpg"] == "no face detected"
    assert reasons["fewfaces/flat.png"] == "no face detected"
    assert reasons[f"{names[1]}/broken.jpg"].startswith("unreadable")
    excluded = {e["identity"]: e for e in report["excluded_identities"]}
    assert set(excluded) == {"small", "fewfaces"}
    assert excluded["small"]["photos"] == 3 and "min_images" in excluded["small"]["reason"]
    assert excluded["fewfaces"]["photos_with_face"] == 3
    assert [f["path"] for f in report["ignored_files"]] == [f"{names[1]}/notes.txt"]
    assert c["identities_used"] == 5 and c["identities_excluded"] == 2 and c["identities_found"] == 7


def test_benchmark_json(env):
    out = env["out"]
    info = json.loads((out / "benchmark.json").read_text())
    assert set(info) == {"name", "layout", "source", "seed", "counts", "options", "fiqa_bench_version", "subjects"}
    assert info["name"] == "mini" and info["layout"] == "ijb" and info["seed"] == 0
    assert info["source"] == str(env["src"].resolve())
    assert sorted(info["subjects"].values()) == sorted(env["names"])
    ytf = json.loads((out / "ytf" / "benchmark.json").read_text())
    assert ytf["layout"] == "ytf" and ytf["options"]["folds"] == 10
    assert env["summary"]["readme"] == (out / "README.md").read_text()
    assert "ytf/splits.txt" in env["summary"]["readme"]


def test_ytf_layout(env):
    out = env["out"] / "ytf"
    raw = (out / "splits.txt").read_bytes()
    assert not raw.endswith(b"\n") and b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"")
    rows = [line.split(", ") for line in raw.decode().split("\r\n")]
    assert all(len(r) == 5 for r in rows)
    folds = defaultdict(list)
    for split, pair, v1, v2, same in rows:
        folds[int(split)].append((int(pair), v1, v2, int(same)))
    assert sorted(folds) == list(range(1, 11))
    for fold in folds.values():
        assert [p[0] for p in fold] == list(range(1, len(fold) + 1))
        labels = [p[3] for p in fold]
        assert labels.count(1) == labels.count(0) and labels == sorted(labels, reverse=True)  # same first
        for _, v1, v2, same in fold:
            assert same == int(v1.split("/")[0] == v2.split("/")[0])
    loose = {p.name: p.read_bytes() for p in (env["out"] / "loose_crop").iterdir()}
    frames = sorted(p for p in (out / "frame_images_DB").rglob("*") if p.is_file())
    assert len(frames) == len(loose)
    for f in frames:
        ident, video, file = f.relative_to(out / "frame_images_DB").parts
        assert f.read_bytes() == loose[f"{ident}_{file}"]
        assert 0 <= int(video) < T
    pts = lines(out / "meta" / "mini_name_5pts_score.txt")
    assert sorted(r[0] for r in pts) == sorted(f.relative_to(out / "frame_images_DB").as_posix() for f in frames)
    videos = {"/".join(f.relative_to(out / "frame_images_DB").parts[:2]) for f in frames}
    assert {v for fold in folds.values() for p in fold for v in p[1:3]} <= videos
    assert (out / "degradations.csv").read_text().count("\n") == (env["out"] / "degradations.csv").read_text().count(
        "\n"
    )


def test_nothing_written_outside_out(env):
    assert tree_hashes(env["src"]) == env["src_before"]
    # only the source, the user cache (detector weights' checksum stamp) and output folders of this module
    assert {p.name for p in env["base"].iterdir()} <= {"src", "user-cache", "a", "b", "c", "d", "e", "f", "g"}
    assert not [p for p in env["out"].rglob("*.tmp")]


def test_rerun_is_byte_identical_and_seed_changes_split(env):
    base, src = env["base"], env["src"]
    kw = dict(name="mini", seed=0, layout="both", templates_per_identity=T, degrade_fraction=0.4, progress=False)
    P.prepare_benchmark(src, base / "b", **kw)
    first = tree_hashes(env["out"])
    assert tree_hashes(base / "b") == first
    # again into the same folder, with a stale image left there: same files, stale one removed
    (env["out"] / "loose_crop" / "stale_0001.jpg").write_bytes(b"old")
    # a file that changed is rewritten; unchanged files keep their mtime (caches key images by path+size+mtime)
    changed = env["out"] / "meta" / "mini_tid_sid.txt"
    changed.write_text("tampered\n")
    mtimes = {p: p.stat().st_mtime_ns for p in env["out"].rglob("*") if p.is_file() and p != changed}
    summary = P.prepare_benchmark(src, env["out"], **kw)
    assert all(p.stat().st_mtime_ns == m for p, m in mtimes.items() if p.exists())
    assert summary["removed_stale_files"] == ["loose_crop/stale_0001.jpg"]
    assert tree_hashes(env["out"]) == first
    P.prepare_benchmark(src, base / "c", **{**kw, "seed": 1})
    other = tree_hashes(base / "c")
    assert other["meta/mini_face_tid_mid.txt"] != first["meta/mini_face_tid_mid.txt"]
    assert other["degradations.csv"] != first["degradations.csv"]


def test_cli_prints_a_short_summary_and_the_record_with_json(env):
    """``prepare`` prints a few lines for people (the counts, where it wrote); ``--json`` the whole record."""
    from click.testing import CliRunner

    from fiqa_bench.cli.main import main

    base, src = env["base"], env["src"]
    args = [
        "prepare",
        str(src),
        "--name",
        "mini",
        "--seed",
        "0",
        "--layout",
        "both",
        "--templates-per-identity",
        str(T),
        "--degrade",
        "0.4",
        "--no-progress",
    ]
    res = CliRunner().invoke(main, [*args, str(base / "cli-json"), "--json"])
    assert res.exit_code == 0, res.output
    record = json.loads(res.stdout)
    expected = {k: v for k, v in env["summary"].items() if k not in ("out", "seconds")}
    assert {k: v for k, v in record.items() if k not in ("out", "seconds")} == json.loads(json.dumps(expected))
    assert record["out"] == str(base / "cli-json") and record["readme"] == env["summary"]["readme"]

    res = CliRunner().invoke(main, [*args, str(base / "cli")])
    assert res.exit_code == 0, res.output
    assert tree_hashes(base / "cli") == tree_hashes(base / "cli-json")
    text = res.stdout
    lines = text.splitlines()
    assert 4 <= len(lines) <= 6 and "{" not in text and "\\n" not in text  # no JSON, no escaped README
    c = env["summary"]["counts"]
    assert lines[0].startswith(f"prepared 'mini' (both layout, seed 0) in {base / 'cli'} (")
    assert (
        f"identities: {c['identities_used']} used of {c['identities_found']} found "
        f"({c['identities_excluded']} excluded); photos: {c['photos_found']} found, {c['photos_no_face']} without "
        f"a face, {c['photos_unreadable']} unreadable"
    ) in text
    assert (
        f"images: {c['images']} ({c['degraded_images']} degraded copies) in {c['templates']} templates; "
        f"pairs: {c['genuine_pairs']:,} genuine + {c['impostor_pairs']:,} impostor"
    ) in text
    assert f"ytf in {base / 'cli' / 'ytf'}: {c['videos']} videos, {c['ytf_pairs']:,} video pairs" in text
    assert str(base / "cli" / "README.md") in text and str(base / "cli" / "prepare_report.json") in text


def test_no_degradation_copies_everything_and_sampled_impostors(env):
    out = env["base"] / "d"
    s = P.prepare_benchmark(
        env["src"],
        out,
        name="plain",
        seed=3,
        layout="ijb",
        templates_per_identity=2,
        impostor_pairs="20",
        progress=False,
    )
    assert s["counts"]["degraded_images"] == 0
    assert (out / "degradations.csv").read_text() == "file,source,degradation,level,params,landmarks\n"
    assert not (out / "ytf").exists()
    ijb = read_ijb(out, "plain")
    labels = [label for *_, label in ijb["pairs"]]
    assert labels.count(0) == 20 and labels.count(1) == 5  # 5 identities x 1 pair of templates
    assert s["counts"]["impostor_pairs_possible"] == 10 * 9 // 2 - 5
    with pytest.raises(FiqaBenchError, match="only 40"):
        P.prepare_benchmark(
            env["src"], env["base"] / "e", name="x", templates_per_identity=2, impostor_pairs=41, progress=False
        )


def test_ytf_only_layout_at_root(env):
    out = env["base"] / "f"
    P.prepare_benchmark(env["src"], out, name="v", layout="ytf", templates_per_identity=T, progress=False)
    assert (out / "splits.txt").is_file() and (out / "frame_images_DB").is_dir()
    assert json.loads((out / "benchmark.json").read_text())["layout"] == "ytf"
    assert not (out / "loose_crop").exists()
    with pytest.raises(FiqaBenchError, match="at least 10 same-identity"):
        P.prepare_benchmark(
            env["src"], env["base"] / "g", name="v", layout="ytf", templates_per_identity=2, progress=False
        )


def test_ytf_folds_identity_disjoint_and_balanced():
    ids = [f"id{i:02d}" for i in range(25)]
    folds, mode = P._ytf_folds(ids, 3, seed=0)
    assert mode == "identity-disjoint" and len(folds) == 10
    seen: dict[str, int] = {}
    for k, fold in enumerate(folds):
        labels = [p[2] for p in fold]
        assert labels.count(1) == labels.count(0) > 0
        for v1, v2, _same in fold:
            for v in (v1, v2):
                assert seen.setdefault(v.split("/")[0], k) == k  # an identity never appears in two folds
    assert sum(p[2] for f in folds for p in f) == 25 * 3
    assert P._ytf_folds(ids, 3, seed=0) == (folds, mode)
    assert P._ytf_folds(ids, 3, seed=1) != (folds, mode)


def test_reader_loads_the_output(env):
    from fiqa_bench.protocols.ijb import IJBLayout

    bench = IJBLayout(env["out"]).load()
    assert len(bench.faces) == env["summary"]["counts"]["images"]
    assert int(bench.pairs["label"].sum()) == 15
    assert not bench.faces["lx0"].isna().any()


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"layout": "lfw"}, "layout"),
        ({"templates_per_identity": 1}, "templates_per_identity"),
        ({"degrade_fraction": 1.0}, "degrade_fraction"),
        ({"impostor_pairs": "some"}, "impostor_pairs"),
        ({"name": "my bench"}, "name"),
        ({"seed": -1}, "seed"),
    ],
)
def test_bad_options_are_refused(tmp_path, kw, match):
    (tmp_path / "src" / "a").mkdir(parents=True)
    args = {"name": "x", **kw}
    with pytest.raises(FiqaBenchError, match=match):
        P.prepare_benchmark(tmp_path / "src", tmp_path / "out", **args, progress=False)
    assert not (tmp_path / "out").exists()


def test_refuses_foreign_non_empty_output(tmp_path):
    (tmp_path / "src" / "a").mkdir(parents=True)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "thesis.tex").write_text("precious")
    with pytest.raises(FiqaBenchError, match="not empty"):
        P.prepare_benchmark(tmp_path / "src", tmp_path / "out", name="x", progress=False)
    with pytest.raises(FiqaBenchError, match="does not exist"):
        P.prepare_benchmark(tmp_path / "nope", tmp_path / "out2", name="x", progress=False)
    assert (tmp_path / "out" / "thesis.tex").read_text() == "precious"


@pytest.mark.shared
@pytest.mark.slow
def test_full_celeba_wild_parses(shared, tmp_path, isolated_cache):
    """The whole celeba-wild dev set (about 1 min: detection on 4199 photos), checked by a plain parser."""
    src = shared / "data" / "celeba-wild" / "images"
    out = tmp_path / "cw"
    s = P.prepare_benchmark(src, out, name="celebawild", layout="ijb", progress=False)
    meta = out / "meta"
    tid_mid = [l.split() for l in (meta / "celebawild_face_tid_mid.txt").read_text().splitlines()]
    pairs = [l.split() for l in (meta / "celebawild_template_pair_label.txt").read_text().splitlines()]
    pts = [l.split() for l in (meta / "celebawild_name_5pts_score.txt").read_text().splitlines()]
    sid = dict(l.split() for l in (meta / "celebawild_tid_sid.txt").read_text().splitlines())
    assert len(tid_mid) == len(pts) == s["counts"]["images"] == len(os.listdir(out / "loose_crop"))
    assert all(len(r) == 3 for r in tid_mid) and all(len(r) == 12 for r in pts)
    templates = {r[1] for r in tid_mid}
    assert len(templates) == 2 * s["counts"]["identities_used"] == len(sid)
    genuine = sum(r[2] == "1" for r in pairs)
    assert genuine == s["counts"]["identities_used"]
    assert all((sid[a] == sid[b]) == (l == "1") for a, b, l in pairs)
    n = len(templates)
    assert len(pairs) == n * (n - 1) // 2
    c = s["counts"]
    assert c["identities_found"] == 200 and c["photos_found"] == 4199
    assert c["photos_found"] == (
        c["photos_in_small_identities"]
        + c["photos_no_face"]
        + c["photos_unreadable"]
        + c["photos_with_face_in_excluded_identities"]
        + c["images"]
    )


# --- several sources in one benchmark (celeba-wild loose crops + LFW tight crops with pad 0.25) -------------------


@pytest.fixture(scope="module")
def two_sources(shared, tmp_path_factory):
    """3 celeba-wild identities x 6 photos (no pad) and 3 LFW identities x 6 photos (pad 0.25), prepared together."""
    base = tmp_path_factory.mktemp("two-sources")
    old_cache = os.environ.get("FIQA_BENCH_CACHE")
    os.environ["FIQA_BENCH_CACHE"] = str(base / "user-cache")
    trees = {}
    for key, root in (("celeba", shared / "data" / "celeba-wild" / "images"), ("lfw", shared / "data" / "lfw" / "lfw")):
        folders = [d for d in sorted(root.iterdir()) if len(list(d.glob("*.jpg"))) >= 6][:3]
        for d in folders:
            (base / key / d.name).mkdir(parents=True)
            for f in sorted(d.glob("*.jpg"))[:6]:
                shutil.copy(f, base / key / d.name / f.name)
        trees[key] = base / key
    sources = [P.Source(trees["lfw"], pad=0.25), P.Source(trees["celeba"])]  # order given: not the order used
    summary = P.prepare_benchmark(
        sources,
        base / "out",
        name="two",
        seed=0,
        layout="both",
        templates_per_identity=3,
        degrade_fraction=0.3,
        progress=False,
    )
    yield {"base": base, "trees": trees, "sources": sources, "summary": summary, "out": base / "out"}
    if old_cache is None:
        os.environ.pop("FIQA_BENCH_CACHE", None)
    else:
        os.environ["FIQA_BENCH_CACHE"] = old_cache


def test_two_sources_identities_pairs_and_padded_landmarks(two_sources):
    """Both sources' identities, in name order; pairs as for one source; each photo detected with its own source's
    padding (checked against detect_face called directly, and against pad 0 for the LFW crops)."""
    from fiqa_bench.faces.detect import detect_face, make_detector

    out, trees = two_sources["out"], two_sources["trees"]
    names = {k: sorted(p.name for p in t.iterdir()) for k, t in trees.items()}
    info = json.loads((out / "benchmark.json").read_text())
    assert list(info["subjects"].values()) == sorted(names["celeba"] + names["lfw"])
    assert info["source"] == [str(trees["lfw"].resolve()), str(trees["celeba"].resolve())]
    assert info["options"]["detect_pad"] == [0.25, 0.0]
    ijb = read_ijb(out, "two")
    c = two_sources["summary"]["counts"]
    assert c["identities_used"] == 6 and c["templates"] == 18 and c["images"] == 36
    assert c["genuine_pairs"] == 6 * 3 and c["impostor_pairs"] == 18 * 17 // 2 - 18 == sum(
        1 for *_, l in ijb["pairs"] if l == 0
    )
    assert all(label == int(ijb["subject"][a] == ijb["subject"][b]) for a, b, label in ijb["pairs"])

    det = make_detector("yunet")
    degraded = {row["file"]: row for row in csv.DictReader(open(out / "degradations.csv"))}
    pad_of = {n: 0.25 for n in names["lfw"]} | {n: 0.0 for n in names["celeba"]}
    subjects = info["subjects"]
    moved = 0
    for row in ijb["pts"]:
        ident = subjects[str(ijb["subject"][ijb["template"][row[0]]])]
        if row[0] in degraded and degraded[row[0]]["landmarks"] != "detected":
            continue
        image = cv2.imread(str(out / "loose_crop" / row[0]), cv2.IMREAD_COLOR)
        want = detect_face(det, image, pad=pad_of[ident])
        np.testing.assert_allclose(
            np.array(row[1:11], float), np.round(want.landmarks.reshape(10).astype(float), 2), atol=0.0051
        )
        assert float(row[11]) == pytest.approx(want.score, abs=5e-5)
        if pad_of[ident]:
            unpadded = detect_face(det, image, pad=0.0)
            moved += np.abs(unpadded.landmarks - want.landmarks).max() > 0.05
    assert moved >= 12  # the LFW crops' landmarks really come from the padded detection (18 LFW images, a few degraded)
    ytf = json.loads((out / "ytf" / "benchmark.json").read_text())
    assert ytf["counts"]["ytf_same_pairs"] == 18


def test_two_sources_cli_matches_api_and_refuses_shared_names(two_sources, tmp_path):
    from click.testing import CliRunner

    from fiqa_bench.cli.main import main

    base, trees = two_sources["base"], two_sources["trees"]
    res = CliRunner().invoke(
        main,
        [
            "prepare",
            f"{trees['lfw']}:pad=0.25",
            str(trees["celeba"]),
            str(base / "cli"),
            "--name",
            "two",
            "--seed",
            "0",
            "--layout",
            "both",
            "--degrade",
            "0.3",
            "--templates-per-identity",
            "3",
            "--no-progress",
        ],
    )
    assert res.exit_code == 0, res.output
    assert tree_hashes(base / "cli") == tree_hashes(two_sources["out"])
    # the same identity folder in two sources would merge two people (or count a person's pairs as impostors)
    clash, first = tmp_path / "clash", sorted(p.name for p in trees["celeba"].iterdir())[0]
    shutil.copytree(trees["celeba"] / first, clash / first)
    with pytest.raises(FiqaBenchError, match=f"identity folder '{first}' is in two sources"):
        P.prepare_benchmark([trees["celeba"], clash], tmp_path / "o", name="x", progress=False)
    with pytest.raises(FiqaBenchError, match="unknown option 'pads=1'"):
        P.Source.parse(f"{trees['lfw']}:pads=1")
    with pytest.raises(FiqaBenchError, match="given twice"):
        P.prepare_benchmark([trees["lfw"], trees["lfw"]], tmp_path / "o2", name="x", progress=False)
    res = CliRunner().invoke(main, ["prepare", str(tmp_path / "only-out"), "--name", "x"])
    assert res.exit_code == 2 and "at least one SRC" in res.output
