"""The leaderboard site and the HTML report in a real headless Chromium (Debian's ``chromium``, driven by Playwright's
Python client with that executable; never a browser Playwright downloads).

The pages must load from disk (file://) and from a plain static HTTP server with no console error and no request
leaving the machine; clicking a column heading sorts, ticking a filter filters, and a copied link restores the
view. Row orders are checked exactly against an ordering computed here from the results files.

Where the browser or Playwright is missing the tests FAIL when CI is set (``.ci/run`` installs both) and skip,
saying why, only on a developer's machine without CI. Screenshots go to ``$FIQA_TEST_ARTEFACTS`` (default
``tests/artefacts/``, ignored by git).
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import json
import os
import re
import shutil
import tempfile
import threading
from pathlib import Path
from urllib.parse import quote

import pytest

from _leaderboard_runs import real_runs
from fiqa_bench.writers.leaderboard import write_site

CHROMIUM = os.environ.get("FIQA_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TOP1 = ["blur", "jpeg", "pose", "random"]  # the methods of the real top1 board


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _unavailable(problem: str):
    if _in_ci():
        pytest.fail(f"browser tests cannot run, and CI needs them: {problem}", pytrace=False)
    pytest.skip(f"{problem} (CI is not set, so skipped; in CI this fails)")


def artefacts() -> Path:
    folder = Path(os.environ.get("FIQA_TEST_ARTEFACTS") or Path(__file__).parent / "artefacts")
    folder.mkdir(parents=True, exist_ok=True)
    if "FIQA_TEST_ARTEFACTS" not in os.environ and not (folder / ".gitignore").exists():
        (folder / ".gitignore").write_text("*\n")
    return folder


@pytest.fixture(scope="module")
def browser():
    """A persistent Chromium context on a fresh user-data-dir."""
    try:
        from playwright.sync_api import Error, sync_playwright
    except ImportError as exc:
        _unavailable(f"Playwright's Python client is not installed ({exc}); pip install playwright")
    if not (Path(CHROMIUM).is_file() and os.access(CHROMIUM, os.X_OK)):
        _unavailable(f"no Chromium at {CHROMIUM} (Debian: apt-get install chromium; or set FIQA_CHROMIUM)")
    profile = tempfile.mkdtemp(prefix="fiqa-chromium-")
    try:
        with sync_playwright() as p:
            try:
                context = p.chromium.launch_persistent_context(
                    profile,
                    executable_path=CHROMIUM,
                    headless=True,
                    args=CHROMIUM_ARGS,
                    viewport={"width": 1400, "height": 1000},
                )
            except Error as exc:
                _unavailable(f"{CHROMIUM} did not start: {str(exc).splitlines()[0]}")
            yield context
            context.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)


class Opened:
    """A page with everything that went wrong on it: console errors, uncaught exceptions, failed requests,
    requests that would leave the machine (aborted), dialogs (an injected alert())."""

    def __init__(self, context, url: str):
        self.errors: list[str] = []
        self.outside: list[str] = []
        self.page = context.new_page()
        self.page.on(
            "console", lambda m: self.errors.append(f"console.{m.type}: {m.text}") if m.type == "error" else None
        )
        self.page.on("pageerror", lambda e: self.errors.append(f"uncaught: {e}"))
        self.page.on(
            "requestfailed",
            lambda r: None if r.url in self.outside else self.errors.append(f"request failed: {r.url} ({r.failure})"),
        )
        self.page.on("dialog", lambda d: (self.errors.append(f"dialog: {d.message}"), d.dismiss()))
        self.page.route(re.compile(r"^(?!file:|data:|about:|http://127\.0\.0\.1[:/]).*"), self._abort)
        self.page.goto(url)
        self.page.wait_for_load_state("load")

    def _abort(self, route):
        self.outside.append(route.request.url)
        route.abort()

    def clean(self) -> None:
        assert self.errors == [] and self.outside == [], (self.errors, self.outside)

    def rows(self, board: str) -> list[str]:
        return self.page.eval_on_selector_all(
            f"section[data-board='{board}'] tbody tr", "trs => trs.map(t => t.dataset.method)"
        )

    def boards(self) -> list[str]:
        return self.page.eval_on_selector_all("section[data-board]", "s => s.map(x => x.dataset.board)")

    def columns(self, board: str) -> list[str]:
        return self.page.eval_on_selector_all(
            f"section[data-board='{board}'] thead th[data-col]", "ths => ths.map(t => t.dataset.col)"
        )

    def sort_by(self, board: str, column: str) -> None:
        self.page.click(f"section[data-board='{board}'] th[data-col='{column}'] button")

    def aria_sort(self, board: str, column: str) -> str | None:
        return self.page.get_attribute(f"section[data-board='{board}'] th[data-col='{column}']", "aria-sort")

    def tick(self, dim: str, value: str) -> None:
        self.page.click(f"#filters input[name='{dim}'][value='{value}']")

    def hash(self) -> str:
        return self.page.evaluate("location.hash")

    def close(self) -> None:
        self.page.close()


@contextlib.contextmanager
def opened(context, url: str):
    o = Opened(context, url)
    try:
        yield o
    finally:
        o.close()


# ------------------------------------------------------------------------------------------ the site


def _copy(src: Path, dest: Path, edit) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    rec = json.loads(src.read_text())
    edit(rec)
    (dest / src.name).write_text(json.dumps(rec))
    shutil.copy(src.with_suffix(".npz"), dest / src.with_suffix(".npz").name)


#: Hand-edited copies of the real top1 runs: protocol "edited", distinct TPR@FPR=1e-1 (no ties), one on
#: another FR backbone name; ms/image from a costs.json written here.
EDITED_TPR = {"blur": 0.875, "jpeg": 0.625, "pose": 0.75, "random": 0.5}
COSTS_MS = {"blur": 0.25, "jpeg": 0.5, "pose": 0.125, "random": 1.0}


@pytest.fixture(scope="module")
def site(small_bench, shared, tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("browser-site")
    runs = real_runs(small_bench, f"onnx:{shared / 'models/mobilefacenet/mobilefacenet.onnx'}", root)
    recs = {
        json.loads(p.read_text())["method"]["name"]: (p, json.loads(p.read_text())) for p in sorted(runs.glob("*.json"))
    }
    edited = root / "edited"
    for method, tpr in EDITED_TPR.items():

        def edit(r, tpr=tpr):
            r["protocol"]["name"] = "edited"
            r["metrics"]["tpr_at_fpr"]["values"]["1e-1"] = tpr
            r["metrics"]["tpr_at_fpr"].setdefault("intervals", {})["1e-1"] = [tpr - 0.125, min(1.0, tpr + 0.125)]

        _copy(recs[method][0], edited, edit)
    _copy(
        recs["blur"][0],
        root / "other-fr",
        lambda r: (r["protocol"].update(name="edited"), r["backbone"].update(name="other-fr")),
    )
    (edited / "costs.json").write_text(
        json.dumps(
            {
                "costs_schema_version": 1,
                "machine": {
                    "cpu_model": "test",
                    "cores": 2,
                    "onnxruntime": "1",
                    "threads": 2,
                    "load_average_start": [0, 0, 0],
                    "date": "2026-12-01T00:00:00+00:00",
                },
                "config": {"images": 1, "repeats": 1, "batch_size": 1},
                "methods": [
                    {"name": n, "need_aligning": "yes", "ms_single": ms, "ms_batch": ms} for n, ms in COSTS_MS.items()
                ],
            }
        )
    )
    out = root / "site"
    write_site([runs, edited, root / "other-fr"], out)
    data = json.loads(
        re.search(r'id="leaderboard-data">(.*?)</script>', (out / "index.html").read_text(), re.S).group(1)
    )
    ids = {(b["protocol"], b["backbone"], b["selection"]): b["id"] for b in data["boards"]}
    return {
        "root": root,
        "runs": runs,
        "recs": {m: r for m, (_, r) in recs.items()},
        "out": out,
        "url": (out / "index.html").as_uri(),
        "data": data,
        "ids": ids,
    }


def _ordered(values: dict[str, float | None], descending: bool) -> list[str]:
    """Methods by value, missing values last, ties by name: the order the page promises."""
    present = sorted((v, m) for m, v in values.items() if v is not None)
    if descending:
        present = sorted(present, key=lambda vm: (-vm[0], vm[1]))
    return [m for _, m in present] + sorted(m for m, v in values.items() if v is None)


def _real(site, method: str, key: str, short: str):
    value = site["recs"][method]["metrics"][key]
    return (value.get("values") or value.get("pauc") or {}).get(short)


def _ids(site):
    mbf = "onnx:mobilefacenet.onnx"
    return (
        site["ids"][("mini", mbf, "top1")],
        site["ids"][("mini", mbf, "all")],
        site["ids"][("edited", mbf, "top1")],
        site["ids"][("edited", "other-fr", "top1")],
    )


@pytest.mark.shared
def test_site_loads_from_disk_offline_with_no_console_error(browser, site):
    real, baseline, edited, other = _ids(site)
    with opened(browser, site["url"]) as o:
        o.clean()
        assert o.boards() == [edited, other, baseline, real]  # boards sorted by protocol, backbone, selection
        # default: each board by its first column, best first (TPR: higher), ties by name
        assert o.rows(real) == _ordered({m: _real(site, m, "tpr_at_fpr", "1e-1") for m in TOP1}, True)
        assert o.rows(edited) == ["blur", "pose", "jpeg", "random"]  # 87.5, 75, 62.5, 50
        assert o.rows(baseline) == ["none"]
        tpr_cell = "td[data-col='tpr_at_fpr:1e-1']"
        cell = o.page.text_content(f"section[data-board='{edited}'] tr[data-method='pose'] {tpr_cell}")
        # the value and its interval as the results file has them (a dagger, a tie with the best, aside)
        assert cell.replace("\u2020", "") == "75.00 [62.50, 87.50]"
        iv = site["recs"]["blur"]["metrics"]["tpr_at_fpr"].get("intervals", {}).get("1e-1")
        if iv is not None:
            text = o.page.text_content(f"section[data-board='{real}'] tr[data-method='blur'] {tpr_cell}")
            value = 100 * _real(site, "blur", "tpr_at_fpr", "1e-1")
            assert text.replace("\u2020", "") == f"{value:.2f} [{100 * iv[0]:.2f}, {100 * iv[1]:.2f}]"
        costs = o.page.eval_on_selector_all(f"section[data-board='{edited}'] td.cost", "t => t.map(x => x.innerText)")
        assert costs == ["0.25", "0.12", "0.50", "1.00"]  # COSTS_MS in row order (blur pose jpeg random), 2 digits
        shot = artefacts() / "leaderboard.png"
        o.page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 10_000


@pytest.mark.shared
def test_clicking_column_headings_sorts_the_rows(browser, site):
    real, _, edited, _ = _ids(site)
    with opened(browser, site["url"]) as o:
        tpr = {m: _real(site, m, "tpr_at_fpr", "1e-1") for m in TOP1}
        assert o.aria_sort(real, "tpr_at_fpr:1e-1") == "descending"  # the default column, best first
        o.sort_by(real, "tpr_at_fpr:1e-1")  # clicking the column a board is sorted by reverses it
        assert o.rows(real) == _ordered(tpr, False) and o.aria_sort(real, "tpr_at_fpr:1e-1") == "ascending"
        for col, (key, short) in {
            "edc_fnm_rethreshold:0.20": ("edc_fnm_rethreshold", "0.20"),
            "edc_fm:0.20": ("edc_fm", "0.20"),
            "tpr_at_fpr:1e-1": ("tpr_at_fpr", "1e-1"),
        }.items():
            values = {m: _real(site, m, key, short) for m in TOP1}
            higher = key == "tpr_at_fpr"
            o.sort_by(real, col)  # first click on another column: best first
            assert o.rows(real) == _ordered(values, higher), col
            assert o.aria_sort(real, col) == ("descending" if higher else "ascending")
            o.sort_by(real, col)  # second click: the other way
            assert o.rows(real) == _ordered(values, not higher), col
            assert o.aria_sort(real, col) == ("ascending" if higher else "descending")
            assert f"sort={quote(col, safe='')}" in o.hash()
        assert (
            len(
                set(
                    map(
                        tuple, [_ordered({m: _real(site, m, "edc_fm", "0.20") for m in TOP1}, d) for d in (True, False)]
                    )
                )
            )
            == 2
        )  # the real data does tell the orders apart
        # the sort applies to every board that has the column
        assert o.rows(edited) == ["blur", "pose", "jpeg", "random"][::-1]
        o.sort_by(edited, "cost")
        assert o.rows(edited) == sorted(COSTS_MS, key=COSTS_MS.get)  # cheapest first
        o.sort_by(edited, "method")
        assert o.rows(edited) == sorted(EDITED_TPR) and o.rows(real) == TOP1
        o.sort_by(edited, "method")
        assert o.rows(edited) == sorted(EDITED_TPR, reverse=True)
        o.clean()


@pytest.mark.shared
def test_filters_change_boards_rows_and_columns(browser, site):
    real, baseline, edited, other = _ids(site)
    with opened(browser, site["url"]) as o:
        o.tick("method", "jpeg")
        o.tick("method", "blur")
        assert o.boards() == [edited, other, real]  # the baseline board has neither
        assert o.rows(edited) == ["blur", "jpeg"] and o.rows(other) == ["blur"]
        assert o.rows(real) == [
            m for m in _ordered({m: _real(site, m, "tpr_at_fpr", "1e-1") for m in TOP1}, True) if m in ("blur", "jpeg")
        ]
        o.tick("metric", "tpr_at_fpr")
        assert [c for c in o.columns(real) if ":" in c] == [
            f"tpr_at_fpr:{s}" for s in site["recs"]["blur"]["metrics"]["tpr_at_fpr"]["values"]
        ]
        o.tick("metric", "tpr_at_fpr")  # untick: every metric again
        assert any(c.startswith("edc_fm:") for c in o.columns(real))
        o.tick("protocol", "edited")
        assert o.boards() == [edited, other]
        o.tick("backbone", "other-fr")
        assert o.boards() == [other]
        o.tick("method", "blur")
        o.tick("method", "jpeg")
        o.tick("backbone", "other-fr")
        o.tick("protocol", "edited")
        o.tick("selection", "all")
        assert o.boards() == [baseline]
        o.tick("method", "blur")  # no run of blur with selection 'all': the page says so
        assert o.boards() == [] and o.page.is_visible("#empty")
        o.page.click("#clear-filters")
        assert o.boards() == [edited, other, baseline, real] and o.hash() == ""
        o.clean()


@pytest.mark.shared
def test_a_linked_view_is_restored(browser, site):
    real, _, edited, other = _ids(site)
    view = "method=pose&method=jpeg&method=blur&metric=edc_fm&sort=edc_fm%3A0.20&order=desc&protocol=mini"
    with opened(browser, site["url"]) as o:  # build the view by hand, then copy its link
        for dim, value in (
            ("protocol", "mini"),
            ("method", "pose"),
            ("method", "jpeg"),
            ("method", "blur"),
            ("metric", "edc_fm"),
        ):
            o.tick(dim, value)
        assert o.aria_sort(real, "edc_fm:0.20") == "ascending"  # the first column shown, best (lowest) first
        o.sort_by(real, "edc_fm:0.20")
        link = o.page.get_attribute("#permalink", "href")
        shown = o.rows(real)
    expected = [
        m for m in _ordered({m: _real(site, m, "edc_fm", "0.20") for m in TOP1}, True) if m in ("pose", "jpeg", "blur")
    ]
    assert shown == expected
    for url in (site["url"] + link, site["url"] + "#" + view, site["url"] + "?" + view):
        with opened(browser, url) as o:
            assert o.boards() == [real], url
            assert o.rows(real) == expected, url
            assert [c for c in o.columns(real) if ":" in c] == ["edc_fm:0.20", "edc_fm:0.30"]
            assert o.aria_sort(real, "edc_fm:0.20") == "descending"
            ticked = o.page.eval_on_selector_all("#filters input:checked", "b => b.map(x => x.name + '=' + x.value)")
            assert sorted(ticked) == ["method=blur", "method=jpeg", "method=pose", "metric=edc_fm", "protocol=mini"]
            # the link shown is the view's own, and unknown values in a link are ignored
            assert o.page.get_attribute("#permalink", "href") == link
            o.clean()
    with opened(browser, site["url"] + "?" + view) as o:  # a ?query view moves to the hash, so "show all" clears it
        assert o.page.evaluate("location.search") == "" and o.hash() == link
        o.page.click("#clear-filters")
        o.page.reload()
        assert o.boards() == [edited, other, _ids(site)[1], real]
        o.clean()
    with opened(browser, site["url"] + "#method=nosuch&sort=nosuch") as o:
        assert o.boards() == [edited, other, _ids(site)[1], real] and o.hash() == ""
        o.page.evaluate("location.hash = 'protocol=edited&sort=cost&order=desc'")  # a changed hash re-renders
        o.page.wait_for_function("document.querySelectorAll('section[data-board]').length === 2")
        assert o.rows(edited) == sorted(COSTS_MS, key=COSTS_MS.get, reverse=True)
        o.clean()


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@contextlib.contextmanager
def static_host(folder: Path):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.shared
def test_from_a_static_host_and_every_link_opens(browser, site):
    real, _, edited, _ = _ids(site)
    with static_host(site["out"]) as base, opened(browser, base + "/index.html#protocol=edited") as o:
        o.clean()
        assert o.rows(edited) == ["blur", "pose", "jpeg", "random"]
        links = o.page.eval_on_selector_all("tbody a", "as => as.map(a => a.href)")
        # results, raw .npz, card and cost of the 4 edited rows and of other-fr's blur (the only costs.json given
        # applies to RESULTS_DIRs without one)
        assert len(links) == 5 * 4
        for href in links:
            assert href.startswith(base + "/"), href
            response = o.page.request.get(href)
            assert response.status == 200, href
        card = next(h for h in links if "/cards/pose-" in h)
        o.page.goto(card)
        from fiqa_bench import registry

        paper = registry.load_class("method", "pose").card.paper
        assert paper in o.page.inner_text("body")
        o.clean()
    with opened(browser, site["url"]) as o:  # from disk too: a results link shows that very file
        href = o.page.get_attribute(f"section[data-board='{real}'] tr[data-method='jpeg'] a.results", "href")
        o.page.click(f"section[data-board='{real}'] tr[data-method='jpeg'] a.results")
        o.page.wait_for_load_state("load")
        assert json.loads(o.page.inner_text("pre")) == site["recs"]["jpeg"]
        assert o.page.url == (site["out"] / href).as_uri()


@pytest.mark.shared
def test_markup_in_a_results_file_is_shown_as_text(browser, site, tmp_path):
    evil = '<img src=x onerror="alert(1)">'
    src = next(p for p in site["runs"].glob("*.json") if json.loads(p.read_text())["method"]["name"] == "blur")
    _copy(src, tmp_path / "r", lambda r: r["method"].update(name=evil))
    write_site([tmp_path / "r"], tmp_path / "site")
    with opened(browser, (tmp_path / "site" / "index.html").as_uri()) as o:
        assert o.page.inner_text("tbody td.method .label") == evil
        assert o.page.eval_on_selector_all("img", "i => i.length") == 0
        o.clean()  # no alert dialog, no request for 'x'


@pytest.mark.shared
def test_html_report_in_the_browser(browser, site, tmp_path):
    from fiqa_bench.writers.report import write_report

    out = tmp_path / "report"
    write_report(site["runs"], out)
    with opened(browser, (out / "report.html").as_uri()) as o:
        o.page.wait_for_load_state("networkidle")
        o.clean()
        assert "mini" in o.page.inner_text("body")
        images = o.page.eval_on_selector_all(
            "img", "i => i.map(x => [x.getAttribute('src').slice(0, 60), x.complete, x.naturalWidth])"
        )
        svgs = o.page.eval_on_selector_all("svg", "s => s.map(x => x.getBoundingClientRect().width)")
        for src, complete, width in images:
            assert complete and width > 0, f"image {src} did not load"
        assert all(w > 0 for w in svgs)
        # the SVG versions the figures link to decode as images too
        svg_links = o.page.eval_on_selector_all("a[href$='.svg']", "as => as.map(a => a.href)")
        decoded = o.page.evaluate(
            """hrefs => Promise.all(hrefs.map(h => new Promise(done => {
            const img = new Image(); img.onload = () => done([h, img.naturalWidth]);
            img.onerror = () => done([h, 0]); img.src = h; })))""",
            svg_links,
        )
        assert all(width > 0 for _, width in decoded), decoded
        if (Path(__file__).parents[1] / "fiqa_bench" / "plots.py").is_file():
            assert len(images) + len(svgs) > 0, "the report has plots but the page shows none"
            assert len(svg_links) > 0, "the report's figures link to no SVG"
        shot = artefacts() / "report.png"
        o.page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 10_000


def _handwritten(method: str, protocol: str, metrics: dict, kind: str) -> dict:
    """A results record written by hand (schema 2), for a site that needs no real data."""
    return {
        "schema_version": 2,
        "suite": {"name": "fiqa-bench", "version": "0.1.0", "git_commit": None},
        "method": {
            "name": method,
            "version": "1",
            "card_hash": "c" * 16,
            "options": {},
            "options_sha256": {},
            "card": {"summary": f"{method} summary", "paper": f"{method} paper", "licence": "MIT", "weights": None},
        },
        "backbone": {"name": "r50", "weights_sha256": "w" * 64},
        "protocol": {
            "name": protocol,
            "version": "1",
            "metric": kind,
            "metrics": list(metrics),
            "faces_sha256": "f" * 64,
            "pairs_sha256": "p" * 64,
        },
        "config": {"selection": "top1", "seed": 0},
        "settings": {"method": method},
        "counts": {"genuine": 400, "impostor": 160000, "subjects": 100},
        "timings": {},
        "metrics": metrics,
    }


def test_handwritten_results_without_real_data(browser, tmp_path):
    """Runs without ../shared too: a TPR board and a k-fold accuracy board from hand-written results files."""
    folder = tmp_path / "results"
    folder.mkdir()
    tpr = {"a": 0.91, "b": 0.97, "c": None, "d": 0.93}
    acc = {"a": 0.990, "b": 0.985, "c": 0.995}
    for m, v in tpr.items():
        rec = _handwritten(
            m,
            "ijbc",
            {
                "tpr_at_fpr": {
                    "values": {"1e-4": v},
                    "reading": "conservative",
                    "detail": {"1e-4": {"reason": None if v is not None else "too few impostors"}},
                    "intervals": {"1e-4": None if v is None else [v - 0.02, v + 0.01]},
                }
            },
            "tpr_at_fpr",
        )
        (folder / f"ijbc__{m}.json").write_text(json.dumps(rec))
    for m, v in acc.items():
        rec = _handwritten(
            m,
            "ytf",
            {"accuracy": {"mean": v, "std": 0.01, "folds": [v] * 10, "thresholds": [0.3] * 10}},
            "kfold_accuracy",
        )
        (folder / f"ytf__{m}.json").write_text(json.dumps(rec))
    write_site([folder], tmp_path / "site")
    url = (tmp_path / "site" / "index.html").as_uri()
    with opened(browser, url) as o:
        ijbc, ytf = o.boards()
        assert ijbc.startswith("ijbc") and ytf.startswith("ytf")
        assert o.rows(ijbc) == ["b", "d", "a", "c"]  # 97, 93, 91, then the missing value
        assert o.rows(ytf) == ["c", "a", "b"]  # 99.5, 99.0, 98.5
        from fiqa_bench.metrics.base import get_metric

        short = get_metric("accuracy").columns({"mean": 0.99})[0][0]  # as the metric declares its column
        assert o.columns(ytf) == ["method", "cost", f"accuracy:{short}"]
        meta = o.page.inner_text(f"section[data-board='{ytf}'] p.meta")
        assert "400 genuine, 160000 impostor pairs, 100 subjects; one pair is 0.00062 points of accuracy" in meta
        assert "points of TPR" not in meta
        assert "one genuine pair is 0.25 points of TPR" in o.page.inner_text(f"section[data-board='{ijbc}'] p.meta")
        assert (
            o.page.text_content(f"section[data-board='{ijbc}'] tr[data-method='d'] td[data-col='tpr_at_fpr:1e-4']")
            == "93.00 [91.00, 94.00]"
        )
        assert (
            o.page.get_attribute(
                f"section[data-board='{ijbc}'] tr[data-method='c'] td[data-col='tpr_at_fpr:1e-4']", "title"
            )
            == "too few impostors"
        )
        o.sort_by(ijbc, "tpr_at_fpr:1e-4")  # reversed: worst first, the missing value still last
        assert o.rows(ijbc) == ["a", "d", "b", "c"]
        o.tick("method", "a")
        o.tick("method", "c")
        assert o.rows(ijbc) == ["a", "c"] and o.rows(ytf) == ["c", "a"]
        link = o.page.get_attribute("#permalink", "href")
        assert link == "#method=a&method=c&sort=tpr_at_fpr%3A1e-4&order=asc"
        o.clean()
    with opened(browser, url + link) as o:
        assert o.rows(ijbc) == ["a", "c"] and o.rows(ytf) == ["c", "a"]
        o.page.click(f"section[data-board='{ytf}'] tr[data-method='c'] a.card")
        o.page.wait_for_load_state("load")
        assert "c paper" in o.page.inner_text("body")
        o.clean()


REPORTS = Path(__file__).resolve().parents[1] / "reports" / "celeba-eval"


def _file_value(rec: dict, column: str):
    """A headline number read straight from a results file (not through the site's code)."""
    key, short = column.split(":", 1)
    value = rec["metrics"].get(key) or {}
    if key == "tpr_at_fpr":
        return (value.get("values") or {}).get(short)
    if key == "accuracy":
        return value.get("mean")
    return (value.get("pauc") or {}).get(short)


def test_the_committed_comparison_as_a_leaderboard(browser, tmp_path):
    """`fiqa-bench leaderboard reports/celeba-eval` opens in Chromium with each board in the order its results files
    give, and a heading click and a copied link work on it. Needs no ../shared: the results are committed."""
    from click.testing import CliRunner

    from fiqa_bench.cli.main import main

    files = {
        p.name: json.loads(p.read_text())
        for p in sorted(REPORTS.rglob("*.json"))
        if p.name != "costs.json" and "schema_version" in json.loads(p.read_text())
    }
    if not files:
        pytest.skip(f"{REPORTS} holds no results files")
    res = CliRunner().invoke(main, ["leaderboard", str(REPORTS), "--out", str(tmp_path / "site")])
    assert res.exit_code == 0, res.output
    data = json.loads(
        re.search(r'id="leaderboard-data">(.*?)</script>', (tmp_path / "site" / "index.html").read_text(), re.S).group(
            1
        )
    )
    assert sorted(Path(r["file"]).name for b in data["boards"] for r in b["rows"]) == sorted(files)
    url = (tmp_path / "site" / "index.html").as_uri()

    def expected(board: dict, column: str, descending: bool) -> list[str]:
        rows = [(_file_value(files[Path(r["file"]).name], column), r["label"], r["id"]) for r in board["rows"]]
        present = sorted(
            (r for r in rows if r[0] is not None), key=lambda r: (-r[0] if descending else r[0], r[1], r[2])
        )
        missing = sorted((r for r in rows if r[0] is None), key=lambda r: (r[1], r[2]))  # last, by label
        return [r[2] for r in present + missing]

    def shown(o, board_id: str) -> list[str]:
        return o.page.eval_on_selector_all(
            f"section[data-board='{board_id}'] tbody tr", "trs => trs.map(t => t.dataset.row)"
        )

    with opened(browser, url) as o:
        o.clean()
        assert o.boards() == [b["id"] for b in data["boards"]]
        for board in data["boards"]:
            first = board["columns"][0]
            assert shown(o, board["id"]) == expected(board, first["id"], first["higher_is_better"]), board["id"]
        big = max(data["boards"], key=lambda b: len(b["rows"]))
        # the paired verdicts as the page draws them: bold = best and separated, dagger = tied with the best
        drawn = o.page.eval_on_selector_all(
            f"section[data-board='{big['id']}'] tbody td[data-col]",
            "tds => tds.map(t => [t.parentElement.dataset.row, t.dataset.col, !!t.querySelector('.v.best'), "
            "t.dataset.tie === '1', (t.querySelector('.tie') || {}).textContent || ''])",
        )
        wanted = []
        for r in big["rows"]:
            for c in big["columns"]:
                p = r["cells"].get(c["id"], {}).get("paired")
                bold = bool(p and p["best"] and p["separated"])
                tie = bool(p and ((p["best"] and not p["separated"]) or p["tied"]))
                wanted.append([r["id"], c["id"], bold, tie, "\u2020" if tie else ""])
        assert sorted(drawn) == sorted(wanted)
        if big["paired"]:
            assert any(w[2] or w[3] for w in wanted)  # the comparison marks something on the committed data
        col = next((c for c in big["columns"] if c["id"] == "tpr_at_fpr:1e-3"), big["columns"][-1])
        o.sort_by(big["id"], col["id"])
        assert shown(o, big["id"]) == expected(big, col["id"], col["higher_is_better"])
        o.sort_by(big["id"], col["id"])
        assert shown(o, big["id"]) == expected(big, col["id"], not col["higher_is_better"])
        link = o.page.get_attribute("#permalink", "href")
        o.page.screenshot(path=str(artefacts() / "leaderboard-celeba-eval.png"), full_page=True)
        o.clean()
    with opened(browser, url + link) as o:
        assert shown(o, big["id"]) == expected(big, col["id"], not col["higher_is_better"])
        o.clean()


# ------------------------------------------------------------------------------------------ the group filter


@pytest.mark.shared
def test_group_filter_shows_the_rows_of_one_group(browser, site, tmp_path):
    """Groups files (``fiqa-bench groups``) of two of the real top1 runs: choosing a group in the select shows those
    two runs only, each cell the group's own number; the choice is kept in the link and cleared by "show all"."""
    import csv

    from fiqa_bench.analyses.groups import groups_of_run, groups_stem, write_groups

    runs = tmp_path / "runs"
    shutil.copytree(site["runs"], runs)
    bench = Path(site["recs"]["blur"]["config"]["protocol"])
    (faces,) = (bench / "meta").glob("*_face_tid_mid.txt")
    names = [line.split()[0] for line in faces.read_text().splitlines() if line.strip()]
    identities = sorted({n.split("_")[0] for n in names})
    with (tmp_path / "halves.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["image", "half"])
        w.writerows([n, "a" if n.split("_")[0] in identities[:3] else "b"] for n in names)
    expected = {}
    for method in ("blur", "random"):
        (path,) = runs.glob(f"*__{method}__*top1*.json")
        obj = groups_of_run(path, str(tmp_path / "halves.csv"), bootstrap=20)
        write_groups(obj, runs, groups_stem(path, obj["by"]))
        (group_a,) = [g for g in obj["groupings"][0]["groups"] if g["name"] == "a"]
        expected[method] = group_a["metrics"]["edc_fm"]["pauc"]["0.20"]
    out = tmp_path / "site"
    write_site([runs], out)
    url = (out / "index.html").as_uri()
    real = _ids(site)[0]
    from fiqa_bench.metrics.base import get_metric

    with opened(browser, url) as o:
        assert sorted(o.rows(real)) == sorted(TOP1)
        assert o.page.eval_on_selector_all("#group-filter option", "os => os.map(o => o.value)") == [
            "",
            "half=a",
            "half=b",
        ]
        o.page.select_option("#group-filter", "half=a")
        assert sorted(o.rows(real)) == ["blur", "random"]
        assert o.page.is_visible(f"section[data-board='{real}'] .group-note")
        for method, value in expected.items():
            cell = o.page.text_content(
                f"section[data-board='{real}'] tr[data-method='{method}'] td[data-col='edc_fm:0.20'] .v"
            )
            assert cell == get_metric("edc_fm").format(value)
        assert "group=half%3Da" in o.hash()
        o.page.goto("about:blank")
        o.page.goto(url + o_hash(o, "half=a"))
        assert sorted(o.rows(real)) == ["blur", "random"]
        assert o.page.eval_on_selector("#group-filter", "s => s.value") == "half=a"
        o.page.click("#clear-filters")
        assert sorted(o.rows(real)) == sorted(TOP1) and o.hash() == ""
        o.clean()


def o_hash(o: Opened, group: str) -> str:
    return "#" + "group=" + quote(group, safe="")
