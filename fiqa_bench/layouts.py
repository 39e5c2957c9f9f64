"""Which registered layout reads a folder: ``--protocol FOLDER`` for a benchmark written by ``fiqa-bench prepare``
(or any folder in a registered layout).

Layouts are plugins (entry-point group ``fiqa_bench.layouts``): each is a protocol class with ``sniff(root) ->
bool`` (does the folder look like mine?) and a card whose name is the registered protocol that reads such a folder
with the folder as its argument (``ijb-layout:FOLDER``). The core names no layout: a package that registers one is
found the same way.
"""

from __future__ import annotations

from pathlib import Path

from fiqa_bench import registry


def sniff_layout(root: str | Path) -> str | None:
    """The registered name of the first layout (by name) whose reader recognises ``root``, or None."""
    root = Path(root)
    for name in registry.names("layout"):
        if registry.load_class("layout", name).sniff(root):
            return name
    return None


def layout_protocol(layout: str) -> str:
    """The registered protocol name that reads a folder of ``layout`` (its reader's card name)."""
    return registry.load_class("layout", layout).card.name
