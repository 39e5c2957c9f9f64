"""``python -m fiqa_bench``: the same command as ``fiqa-bench``."""

from fiqa_bench.cli.main import main

main(prog_name="fiqa-bench")
