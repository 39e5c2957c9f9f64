"""Inference never depends on training: scoring images must not import ``fiqa_bench.training`` (nor torch through
it), and training never imports the command line (no import circle). Checked twice: statically, every import
statement of every inference source file (module level or inside functions, absolute or relative), and at run
time, importing each inference module in a fresh interpreter."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: Source folders and the package each is installed as (pyproject's package-dir).
PACKAGES = {
    "fiqa_bench": ROOT / "fiqa_bench",
    "fiqa_bench.methods": ROOT / "methods",
    "fiqa_bench.protocols": ROOT / "protocols",
}
TRAINING = "fiqa_bench.training"


def _modules() -> dict[str, Path]:
    """{dotted module name: file} of every installed source file."""
    out = {}
    for package, folder in PACKAGES.items():
        for path in sorted(folder.rglob("*.py")):
            rel = path.relative_to(folder).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            if package == "fiqa_bench" and parts and parts[0] in ("methods", "protocols"):
                continue  # not in the source tree (installed from the top-level folders)
            out[".".join([package, *parts])] = path
    return out


#: The command line: evaluation, training, sensitivity and import/export commands, what they share,
#: ``python -m fiqa_bench``.
COMMAND_LINE = (
    "fiqa_bench.cli.main",
    "fiqa_bench.cli.training",
    "fiqa_bench.cli.sensitivity",
    "fiqa_bench.cli.interchange",
    "fiqa_bench.cli.common",
    "fiqa_bench.__main__",
)


def _is_inference(name: str) -> bool:
    """Everything but the training package and the command line."""
    return not (name == TRAINING or name.startswith(TRAINING + ".") or name in COMMAND_LINE)


def imports_of(name: str, path: Path) -> set[str]:
    """Every module an ``import`` / ``from ... import`` in the file names, relative ones resolved."""
    is_package = path.name == "__init__.py"
    package = name if is_package else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.add(target)
            found.update(f"{target}.{a.name}" for a in node.names)  # `from fiqa_bench import training`
    return found


def _touches(target: str, prefix: str) -> bool:
    return target == prefix or target.startswith(prefix + ".")


def test_the_scan_sees_relative_function_level_imports(tmp_path):
    """The scan itself: a relative import inside a function is found and resolved (else the tests below prove
    nothing)."""
    f = tmp_path / "quality_net.py"
    f.write_text("def load():\n    from ..training.export import preprocess\n    from .. import training\n")
    found = imports_of("fiqa_bench.models.quality_net", f)
    assert "fiqa_bench.training.export" in found and "fiqa_bench.training" in found


def test_no_inference_source_imports_training():
    modules = _modules()
    assert {
        "fiqa_bench.models.quality_net",
        "fiqa_bench.methods.rqs",
        "fiqa_bench.methods.tinyfq",
        "fiqa_bench.features.handcrafted",
        "fiqa_bench.pipeline.runner",
        "fiqa_bench.data.prepare",
    } <= set(modules)
    bad = {
        name: sorted(t for t in imports_of(name, path) if _touches(t, TRAINING))
        for name, path in modules.items()
        if _is_inference(name)
    }
    bad = {k: v for k, v in bad.items() if v}
    assert not bad, f"inference modules importing {TRAINING}: {bad}"


def test_training_never_imports_the_command_line():
    modules = _modules()
    assert "fiqa_bench.training.baselines.data" in modules
    bad = {
        name: sorted(t for t in imports_of(name, path) if any(_touches(t, c) for c in COMMAND_LINE))
        for name, path in modules.items()
        if _touches(name, TRAINING)
    }
    assert not {k: v for k, v in bad.items() if v}


def test_importing_inference_modules_loads_no_training_code():
    names = sorted(n for n in _modules() if _is_inference(n))
    code = (
        "import importlib, json, sys\n"
        f"names = {names!r}\n"
        "leaks, failed = {}, {}\n"
        "for name in names:\n"
        "    before = set(sys.modules)\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except ImportError as exc:\n"  # an optional dependency (dlib, torch) that is not installed
        "        failed[name] = str(exc)\n"
        "    new = sorted(m for m in set(sys.modules) - before if m == 'fiqa_bench.training' "
        "or m.startswith('fiqa_bench.training.'))\n"
        "    if new:\n"
        "        leaks[name] = new\n"
        "print(json.dumps({'leaks': leaks, 'failed': failed, "
        "'training': [m for m in sys.modules if m.startswith('fiqa_bench.training')]}))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["leaks"] == {} and got["training"] == [], got
    assert len(names) - len(got["failed"]) > 40  # the check ran on the package, not on a list of failed imports


def _graph() -> dict[str, set[str]]:
    """{module: the package modules it imports}, function-level imports included."""
    modules = _modules()
    return {name: {t for t in imports_of(name, path) if t in modules and t != name} for name, path in modules.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_cycle_finder_finds_a_circle_through_a_function_level_import():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_in_the_package():
    """No circle of imports anywhere in the package, imports inside functions included: each layer can be read,
    tested and replaced without the ones above it."""
    cycles = _cycles(_graph())
    assert cycles == [], f"import cycles: {cycles}"


def test_executors_never_import_the_runner():
    """Executors get a picklable recipe (fiqa_bench.resolve.ConfigBuild) and call it; they never reach back into
    the runner that drives them."""
    graph = _graph()
    executors = [m for m in graph if _touches(m, "fiqa_bench.executors")]
    assert len(executors) >= 5
    bad = {m: sorted(t for t in graph[m] if t == "fiqa_bench.pipeline.runner") for m in executors}
    assert not {k: v for k, v in bad.items() if v}


#: The plugins shipped with the suite, written the way an outside author writes them (installed as fiqa_bench.methods
#: and fiqa_bench.protocols from the top-level folders).
PLUGINS = ("fiqa_bench.methods", "fiqa_bench.protocols")


def test_the_core_never_imports_a_plugin():
    """The core (everything but methods/ and protocols/ and the conformance kit that tests them) reaches plugins only
    through the registry: a module that imported one would break when that plugin is replaced or uninstalled (the
    data-set builder writes the layouts' files from fiqa_bench.data.layout_files; the baseline trainers write the
    formats of fiqa_bench.models.svm_model / rqs_model)."""
    graph = _graph()
    core = [m for m in graph if not any(_touches(m, p) for p in PLUGINS)]
    assert "fiqa_bench.data.prepare" in core and "fiqa_bench.training.baselines.svm" in core
    bad = {m: sorted(t for t in graph[m] if any(_touches(t, p) for p in PLUGINS)) for m in core}
    assert {k: v for k, v in bad.items() if v} == {}


def test_every_package_of_the_source_tree_is_installed():
    """pyproject.toml lists the packages explicitly (package-dir maps methods/ and protocols/ into the namespace): a
    sub-package left out of the list works in a checkout and is missing from an installed wheel."""
    import tomllib

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]["packages"])
    found = {
        ".".join(("fiqa_bench", *p.parent.relative_to(folder).parts)) if package == "fiqa_bench" else package
        for package, folder in PACKAGES.items()
        for p in folder.rglob("__init__.py")
    }
    assert found - listed == set()
