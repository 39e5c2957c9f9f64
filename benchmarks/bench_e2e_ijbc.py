"""IJB-C-size end to end (issue 12, item 5): an IJB-layout set of real JPEG crops, run stage by stage.

    python benchmarks/bench_e2e_ijbc.py [--n 50000] [--small 10000] [--dir /tmp/fiqa-e2e] [--full] [--no-reader]

1. Sources: the real crops of ``$FIQA_SHARED/data/celeba-wild`` (200 identities) and ``lfw`` (identities with
   two photos or more), their 5 landmarks found once with YuNet (kept in ``DIR/sources.npz``).
2. A set of N images (``DIR/n<N>``, reused when present) in IJB-C's proportions: N x 23,124/469,375 templates,
   N x 3,531/469,375 subjects (one enrolment template each, the others probes), N x 15,658,489/469,375 pairs
   (every probe with its subject's enrolment template, the rest impostor enrolment x probe pairs; below
   IJB-C's size that is more than all enrolment x probe pairs, and all of them are used). Each image
   is a source photo of its subject with seeded jitter (rotation +-8 deg, scale 0.9-1.1, shift +-4%), and a
   third of them one seeded degradation (:func:`fiqa_bench.data.degradations.apply_random`), written as a JPEG
   (quality 90) with its landmarks moved by the same transform. More subjects than source identities
   (``--full``) reuse identities, so some impostor pairs show the same person: throughput, not accuracy.
3. The run ``fiqa-bench run --method tinyfq --fr onnx:mobilefacenet.onnx`` (top1, 2 workers, batch 32) stage by
   stage, in a fresh process per N with a fresh cache: protocol read, quality (every image), select, embed (the
   kept image of each template), pair scores and metrics; img/s per stage, CPU-seconds per image, and the peak
   resident memory (VmHWM) at N and at ``--small``, to say how memory grows.
4. The IJB-layout reader at IJB-C's full size (469,375 face rows, 15,658,489 pair rows; meta files only, written
   once into ``DIR/reader``), best of 3.
5. The projected time of a full IJB-C run on this machine, per Ray worker and on a GPU, from the measured
   per-image costs (the formulas are printed with the figures).

Nothing is asserted: this is a measurement. The default run (50,000 images) takes about 10 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

IJBC_IMAGES, IJBC_TEMPLATES, IJBC_SUBJECTS, IJBC_PAIRS = 469_375, 23_124, 3_531, 15_658_489
MFN = "models/mobilefacenet/mobilefacenet.onnx"
NAME = "e2e"


# ------------------------------------------------------------------------------------------ sources
def find_sources(shared: Path, out: Path) -> dict:
    """Real crops with landmarks: {paths, identity (index), landmarks (N, 5, 2)}, detected once and kept."""
    cached = out / "sources.npz"
    if cached.is_file():
        with np.load(cached, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    from fiqa_bench.faces.detect import LFW_PAD, detect_face, make_detector
    from fiqa_bench.faces.io import load_image

    photos: list[tuple[str, str, float]] = []
    for ident in sorted((shared / "data/celeba-wild/images").iterdir()):
        photos += [(str(p), "celeba/" + ident.name, 0.0) for p in sorted(ident.glob("*.jpg"))]
    for ident in sorted((shared / "data/lfw/lfw").iterdir()):
        files = sorted(ident.glob("*.jpg"))
        if len(files) >= 2:
            photos += [(str(p), "lfw/" + ident.name, LFW_PAD) for p in files]
    det = make_detector("yunet")
    paths, idents, lms = [], [], []
    t = time.perf_counter()
    for path, ident, pad in photos:
        found = detect_face(det, load_image(path), pad=pad)
        if found is not None:
            paths.append(path)
            idents.append(ident)
            lms.append(found.landmarks)
    names, index = np.unique(np.array(idents), return_inverse=True)
    src = {
        "paths": np.array(paths),
        "identity": index.astype(np.int64),
        "identities": names,
        "landmarks": np.asarray(lms, np.float32),
    }
    out.mkdir(parents=True, exist_ok=True)
    np.savez(cached, **src)
    print(
        f"sources: {len(paths)} photos with a face of {len(photos)}, {len(names)} identities "
        f"(YuNet, {time.perf_counter() - t:.0f} s)"
    )
    return src


# ------------------------------------------------------------------------------------------ the set
def plan(n: int, seed: int) -> dict:
    """Templates, subjects, media and pairs for n images in IJB-C's proportions."""
    rng = np.random.default_rng([seed, n])
    t = max(2, round(n * IJBC_TEMPLATES / IJBC_IMAGES))
    s = max(2, min(t // 2, round(n * IJBC_SUBJECTS / IJBC_IMAGES)))
    # IJB-C's pairs are enrolment x probe; below its size, N x 15.7M/469k exceeds them all: then all of them
    p = min(s * (t - s), max(t - s, round(n * IJBC_PAIRS / IJBC_IMAGES)))
    subject_of_template = np.concatenate([np.arange(s), rng.integers(0, s, t - s)])  # the first s: enrolment
    # every template gets one image, the rest are spread at random (sizes vary as IJB-C's do)
    template_of_image = np.concatenate([np.arange(t), rng.integers(0, t, n - t)])
    template_of_image.sort()
    media = np.zeros(n, np.int64)
    starts = np.r_[0, np.flatnonzero(np.diff(template_of_image)) + 1]
    counter = 0
    for a, b in zip(starts, np.r_[starts[1:], n]):  # media of ~3 frames inside each template
        for k in range(a, b, 3):
            media[k : min(b, k + 3)] = counter
            counter += 1
    probes = np.arange(s, t)
    genuine = np.column_stack([subject_of_template[probes], probes])  # enrolment template id == subject
    want = p - len(genuine)
    impostor = np.zeros((0, 2), np.int64)
    if p == s * (t - s):  # every enrolment x probe pair
        e, q = np.meshgrid(np.arange(s), probes, indexing="ij")
        impostor = np.column_stack([e.ravel(), q.ravel()])
        impostor = impostor[subject_of_template[impostor[:, 1]] != impostor[:, 0]]
    while len(impostor) < want:  # distinct enrolment x probe pairs of different subjects
        draw = np.column_stack([rng.integers(0, s, 2 * want), rng.choice(probes, 2 * want)])
        draw = draw[subject_of_template[draw[:, 1]] != draw[:, 0]]
        keys = np.unique(np.r_[impostor[:, 0] * t + impostor[:, 1], draw[:, 0] * t + draw[:, 1]])
        impostor = np.column_stack([keys // t, keys % t])
    impostor = impostor[np.sort(rng.permutation(len(impostor))[:want])]
    pairs = np.concatenate(
        [
            np.column_stack([genuine, np.ones(len(genuine), np.int64)]),
            np.column_stack([impostor, np.zeros(len(impostor), np.int64)]),
        ]
    )
    pairs = pairs[np.argsort(pairs[:, 0] * t + pairs[:, 1], kind="stable")]  # by enrolment template, as IJB-C's
    return {
        "templates": t,
        "subjects": s,
        "template_of_image": template_of_image,
        "media": media,
        "subject_of_template": subject_of_template,
        "pairs": pairs,
    }


def _int_lines(columns: list[np.ndarray], width: int) -> bytes:
    """Lines of space-separated non-negative integers of exactly ``width`` digits each (vectorised: IJB-C's
    15.7M pair lines in a second or two instead of minutes of string formatting)."""
    rows = len(columns[0])
    line = np.empty((rows, len(columns) * (width + 1)), np.uint8)
    for c, values in enumerate(columns):
        v = np.asarray(values, np.int64).copy()
        for d in range(width - 1, -1, -1):
            line[:, c * (width + 1) + d] = 48 + v % 10
            v //= 10
        line[:, c * (width + 1) + width] = 32
    line[:, -1] = 10
    return line.tobytes()


def write_meta(
    root: Path,
    names: list[str],
    tids: np.ndarray,
    media: np.ndarray,
    pairs: np.ndarray,
    landmarks: np.ndarray | None,
    sid_of_tid: np.ndarray | None,
) -> None:
    """The insightface IJB meta files (+ benchmark.json). Template ids are 5-digit numbers (10000 + index),
    as long as IJB-C's; labels one digit."""
    meta = root / "meta"
    meta.mkdir(parents=True, exist_ok=True)
    with open(meta / f"{NAME}_face_tid_mid.txt", "w") as fh:
        fh.write("".join(f"{a} {10000 + t} {m}\n" for a, t, m in zip(names, tids.tolist(), media.tolist())))
    if landmarks is not None:
        flat = landmarks.reshape(len(names), 10)
        with open(meta / f"{NAME}_name_5pts_score.txt", "w") as fh:
            fh.write(
                "".join(f"{a} {' '.join(f'{x:.2f}' for x in row)} 0.900\n" for a, row in zip(names, flat.tolist()))
            )
    if sid_of_tid is not None:
        with open(meta / f"{NAME}_tid_sid.txt", "w") as fh:
            fh.write("".join(f"{10000 + t} {s}\n" for t, s in enumerate(sid_of_tid.tolist())))
    with open(meta / f"{NAME}_template_pair_label.txt", "wb") as fh:
        for start in range(0, len(pairs), 2_000_000):
            block = pairs[start : start + 2_000_000]
            body = _int_lines([10000 + block[:, 0], 10000 + block[:, 1]], 5)
            lines = np.frombuffer(body, np.uint8).reshape(len(block), 12)
            out = np.empty((len(block), 14), np.uint8)
            out[:, :12], out[:, 11], out[:, 12], out[:, 13] = lines, 32, 48 + block[:, 2], 10
            fh.write(out.tobytes())
    (root / "benchmark.json").write_text(json.dumps({"name": NAME, "layout": "ijb"}) + "\n")


def _jitter(image: np.ndarray, lm: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    import cv2

    h, w = image.shape[:2]
    angle, scale = rng.uniform(-8, 8), rng.uniform(0.9, 1.1)
    shift = rng.uniform(-0.04, 0.04, 2) * (w, h)
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, scale)
    m[:, 2] += shift
    out = cv2.warpAffine(image, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101)
    return out, (lm.astype(np.float64) @ m[:, :2].T + m[:, 2]).astype(np.float32)


def build_set(root: Path, n: int, src: dict, seed: int, threads: int) -> Path:
    """The N-image set (reused when its meta files exist)."""
    import cv2

    from fiqa_bench.data.degradations import apply_random

    if (root / "meta" / f"{NAME}_template_pair_label.txt").is_file():
        return root
    t0 = time.perf_counter()
    pl = plan(n, seed)
    ident_photos = [np.flatnonzero(src["identity"] == i) for i in range(len(src["identities"]))]
    order = np.random.default_rng([seed, 7]).permutation(len(ident_photos))
    subject_ident = order[np.arange(pl["subjects"]) % len(order)]  # subjects beyond the identities reuse them
    subj = pl["subject_of_template"][pl["template_of_image"]]
    crops = root / "loose_crop"
    crops.mkdir(parents=True, exist_ok=True)
    names = [f"{j}.jpg" for j in range(n)]
    lms = np.zeros((n, 5, 2), np.float32)

    def one(j: int) -> None:
        rng = np.random.default_rng([seed, n, j])
        photos = ident_photos[subject_ident[subj[j]]]
        k = photos[int(rng.integers(len(photos)))]
        image, lm = _jitter(cv2.imread(str(src["paths"][k])), src["landmarks"][k], rng)
        if rng.random() < 1 / 3:
            x0, y0 = lm.min(axis=0)
            x1, y1 = lm.max(axis=0)
            image, _ = apply_random(image, rng, (float(x0), float(y0), float(x1 - x0), float(y1 - y0)))
        lms[j] = lm
        ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])
        (crops / names[j]).write_bytes(data.tobytes())

    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(one, range(n), chunksize=64))
    write_meta(root, names, pl["template_of_image"], pl["media"], pl["pairs"], lms, pl["subject_of_template"])
    print(
        f"built {root}: {n} images, {pl['templates']} templates, {pl['subjects']} subjects, "
        f"{len(pl['pairs'])} pairs in {time.perf_counter() - t0:.0f} s"
    )
    return root


# ------------------------------------------------------------------------------------------ the run
RUN_CODE = r"""
import json, os, sys, time, resource
from pathlib import Path
import numpy as np
def hwm():
    for line in Path('/proc/self/status').read_text().splitlines():
        if line.startswith('VmHWM:'):
            return int(line.split()[1]) / 1024
def cpu():
    t = os.times()
    return t.user + t.system
out = {}
t, c = time.perf_counter(), cpu()
from fiqa_bench.protocols.ijb import IJBLayout
bench = IJBLayout(Path(sys.argv[1])).load()
out['read_s'] = time.perf_counter() - t
from fiqa_bench.backbones.onnx_arcface import OnnxArcFace
from fiqa_bench.pipeline.evaluation import EvalOptions, evaluate
from fiqa_bench.methods.tinyfq import TinyFQ
backbone, method = OnnxArcFace(sys.argv[2]), TinyFQ()
backbone.embed(np.zeros((1, 112, 112, 3), np.uint8)); method.score(np.zeros((1, 64, 64, 3), np.uint8))
out['rss_after_read_mib'] = hwm()
c0 = cpu()
from fiqa_bench.config import RunConfig
from fiqa_bench.pipeline.runner import make_executor
# the executor `fiqa-bench run` uses: local, worker processes for stages of >= 8,192 images
cfg = RunConfig(protocol=sys.argv[1], backbone='onnx:' + sys.argv[2], method='tinyfq', workers=int(sys.argv[3]),
                batch_size=int(sys.argv[4]), progress=False)
executor = make_executor(cfg)
ev = evaluate(bench, backbone, method, EvalOptions(workers=int(sys.argv[3]), batch_size=int(sys.argv[4])),
              backbone_name='onnx:mobilefacenet.onnx', method_name='tinyfq', executor=executor)
usage = executor.worker_usage()  # the worker processes (children of the fork server, not of this process)
out['driver_cpu_s'] = cpu() - c0
out['cpu_s'] = out['driver_cpu_s'] + usage['cpu_s']
out['workers_peak_rss_mib'] = usage['peak_rss_mib']
out['executor'] = executor.describe()
out['timings'] = ev.timings
out['counts'] = {k: v for k, v in ev.counts.items() if isinstance(v, (int, float))}
out['metrics'] = {k: (v.get('value') if isinstance(v, dict) else v) for k, v in ev.metrics.items()}
out['peak_rss_mib'] = hwm()
print('RESULT ' + json.dumps(out, default=str))
"""


def run_once(root: Path, shared: Path, workers: int, batch: int, cache: Path) -> dict:
    env = dict(os.environ, FIQA_BENCH_CACHE=str(cache))
    proc = subprocess.run(
        [sys.executable, "-c", RUN_CODE, str(root), str(shared / MFN), str(workers), str(batch)],
        capture_output=True,
        text=True,
        env=env,
    )
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise SystemExit(f"the run failed:\n{proc.stderr[-3000:]}")


def reader_time(root: Path, seed: int) -> tuple[float, list[float]]:
    """Best of 3 reads of a meta-only layout at IJB-C's full size (written once)."""
    from fiqa_bench.protocols.ijb import IJBLayout

    if not (root / "meta" / f"{NAME}_template_pair_label.txt").is_file():
        t = time.perf_counter()
        pl = plan(IJBC_IMAGES, seed)
        rng = np.random.default_rng([seed, 11])
        lms = (rng.uniform(40, 200, (IJBC_IMAGES, 5, 2))).astype(np.float32)
        write_meta(
            root,
            [f"img/{j}.jpg" for j in range(IJBC_IMAGES)],
            pl["template_of_image"],
            pl["media"],
            pl["pairs"],
            lms,
            pl["subject_of_template"],
        )
        print(f"reader meta written in {time.perf_counter() - t:.0f} s ({root})")
    times = []
    for _ in range(3):
        t = time.perf_counter()
        bench = IJBLayout(root, check_images=False).load()
        times.append(time.perf_counter() - t)
    assert len(bench.faces) == IJBC_IMAGES and len(bench.pairs) == IJBC_PAIRS
    return min(times), times


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=50_000)
    ap.add_argument("--small", type=int, default=10_000, help="second size, for the growth of memory (0: none)")
    ap.add_argument("--full", action="store_true", help=f"--n {IJBC_IMAGES} (IJB-C's size)")
    ap.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()) / "fiqa-e2e")
    ap.add_argument("--shared", type=Path, default=os.environ.get("FIQA_SHARED"))
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-reader", action="store_true", help="skip the full-size reader timing")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args(argv)
    if args.shared is None:
        sys.exit("set FIQA_SHARED or pass --shared")
    n = IJBC_IMAGES if args.full else args.n
    args.dir.mkdir(parents=True, exist_ok=True)
    src = find_sources(args.shared, args.dir)
    sizes = sorted({n, *([args.small] if 0 < args.small < n else [])})
    report: dict = {"load_avg_start": [round(x, 2) for x in os.getloadavg()], "cpus": os.cpu_count(), "runs": {}}
    for size in sizes:
        root = build_set(args.dir / f"n{size}", size, src, args.seed, max(2, args.workers))
        cache = Path(tempfile.mkdtemp(prefix="cache-", dir=args.dir))
        r = run_once(root, args.shared, args.workers, args.batch_size, cache)
        subprocess.run(["rm", "-rf", str(cache)], check=False)
        t, c = r["timings"], r["counts"]
        kept = c["images_embedded"]
        r["stages"] = {
            "read_s": round(r["read_s"], 2),
            "quality_img_s": round(size / t["quality_s"], 1),
            "embed_img_s": round(kept / t["embed_s"], 1),
            "pair_scores_s": round(t["pair_scores_s"], 2),
            "metrics_s": round(t["metrics_s"], 2),
            "evaluate_s": round(t["evaluate_s"], 1),
        }
        report["runs"][size] = r
        print(
            f"N={size}: read {r['read_s']:.2f} s | quality {size} img in {t['quality_s']:.1f} s = "
            f"{size / t['quality_s']:.0f} img/s | embed {kept} kept img in {t['embed_s']:.1f} s = "
            f"{kept / t['embed_s']:.0f} img/s | pair scores {c['pairs_scored']} in {t['pair_scores_s']:.2f} s | "
            f"metrics {t['metrics_s']:.2f} s | CPU {r['cpu_s']:.0f} s | peak RSS {r['peak_rss_mib']:.0f} MiB "
            f"(after reading: {r['rss_after_read_mib']:.0f}; each worker process at most "
            f"{r['workers_peak_rss_mib']:.0f}) | executor: {r['executor']}"
        )
    if len(sizes) == 2:
        a, b = (report["runs"][s] for s in sizes)
        slope = (b["peak_rss_mib"] - a["peak_rss_mib"]) / (sizes[1] - sizes[0])
        report["rss_mib_per_1000_images"] = round(1000 * slope, 2)
        report["rss_projected_full_mib"] = round(b["peak_rss_mib"] + slope * (IJBC_IMAGES - sizes[1]))
        print(
            f"peak RSS grows {1000 * slope:.1f} MiB per 1,000 images ({sizes[0]} -> {sizes[1]}): about "
            f"{report['rss_projected_full_mib']} MiB projected at {IJBC_IMAGES:,}"
        )
    if not args.no_reader:
        best, times = reader_time(args.dir / "reader", args.seed)
        report["reader_full_s"] = round(best, 2)
        print(
            f"IJB-layout reader at full size ({IJBC_IMAGES:,} faces, {IJBC_PAIRS:,} pairs): best {best:.2f} s "
            f"(runs {', '.join(f'{x:.2f}' for x in times)})"
        )
    # projections from the largest run's per-image costs
    r = report["runs"][n]
    t, c = r["timings"], r["counts"]
    q_s, e_s = t["quality_s"] / n, t["embed_s"] / c["images_embedded"]  # wall seconds per image, this machine

    # pair scores + metrics: a fixed part and a part per pair, from the two sizes (one size: per pair only)
    def pairs_cost(run: dict) -> tuple[float, int]:
        return run["timings"]["pair_scores_s"] + run["timings"]["metrics_s"], run["counts"]["pairs_scored"]

    pc_b, np_b = pairs_cost(r)
    per_pair = pc_b / max(1, np_b)
    if len(sizes) == 2:
        pc_a, np_a = pairs_cost(report["runs"][sizes[0]])
        if np_b > np_a:
            per_pair = max(0.0, (pc_b - pc_a) / (np_b - np_a))
    pair_s = pc_b + per_pair * (IJBC_PAIRS - np_b)
    read_s = report.get("reader_full_s", r["read_s"] * IJBC_IMAGES / n)
    full = read_s + q_s * IJBC_IMAGES + e_s * IJBC_TEMPLATES + pair_s
    report["projection_full_ijbc_s"] = round(full)
    print(
        f"projected full IJB-C here ({args.workers} workers, {os.cpu_count()} CPUs): read {read_s:.0f} s + "
        f"quality {q_s * IJBC_IMAGES:.0f} s + embed {IJBC_TEMPLATES} kept {e_s * IJBC_TEMPLATES:.0f} s + "
        f"pairs/metrics {pair_s:.0f} s = {full / 60:.1f} min"
    )
    cores = min(os.cpu_count() or 1, 2)
    q_core, e_core = q_s * cores, e_s * cores  # core-seconds per image (the stages keep the cores busy)
    print(
        f"per Ray worker with C cores (shards of rows; read, pairs and metrics stay on the driver): "
        f"quality {q_core * 1e3:.2f} ms and MobileFaceNet {e_core * 1e3:.1f} ms of a core per image, so K workers "
        f"take about {read_s + pair_s:.0f} s + ({q_core * IJBC_IMAGES:.0f} + {e_core * IJBC_TEMPLATES:.0f}) "
        f"core-s / (K x C): e.g. 8 workers x 8 cores: "
        f"{(read_s + pair_s + (q_core * IJBC_IMAGES + e_core * IJBC_TEMPLATES) / 64) / 60:.1f} min"
    )
    print(
        "on a GPU (onnxruntime CUDA, --device cuda): the models leave the CPU; the quality stage is then bound by "
        "decoding and alignment (bench_throughput.py's decode-only rate is its ceiling), the FR stage by the "
        "GPU's batched rate; measure with --device cuda where a GPU is present"
    )
    report["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
    print(f"load average: start {report['load_avg_start']}, end {report['load_avg_end']}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
