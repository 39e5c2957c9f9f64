"""Text for Markdown tables, escaped once for every renderer (the report and its costs section)."""

from __future__ import annotations

from typing import Any


def md_cell(text: Any) -> str:
    """``text`` safe inside a GitHub-flavoured Markdown table cell: one line, with ``\\ | * _ ` [ ] < > #``
    escaped so that names like ``a_b`` or ``x|y`` neither format nor split the cell."""
    out = str(text).replace("\\", "\\\\").replace("\r", " ").replace("\n", " ")
    for ch in "|*_`[]<>#":
        out = out.replace(ch, "\\" + ch)
    return out
