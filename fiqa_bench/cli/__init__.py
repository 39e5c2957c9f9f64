"""The ``fiqa-bench`` command: a thin click layer over library code. :mod:`.main` holds the evaluation commands
(run, report, leaderboard, compare, rescore, prepare, ...), :mod:`.training` the training commands (label, train,
train-baseline), :mod:`.common` what both share (one-line usage errors, option types)."""
