"""``python -m fiqa_bench``: the same command as ``fiqa-bench``."""

from .cli import main

main(prog_name="fiqa-bench")
