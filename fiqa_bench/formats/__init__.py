"""Score formats of the field, read by ``fiqa-bench import`` and written by ``fiqa-bench export``.

Each format is one module with one object registered in the entry-point group ``fiqa_bench.formats`` (the
built-ins in ``pyproject.toml``, exactly as another package registers its own): a :class:`~.base.PairFormat`
(comparisons with their scores: bob's 4- and 5-column files, bob's CSV variant, a plain CSV) or an
:class:`~.base.ImageFormat` (per-image embeddings and quality in the order of a protocol's face list:
insightface's IJB layout). :mod:`fiqa_bench.results.interchange` turns what they read into a results file.
"""
