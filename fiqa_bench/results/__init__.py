"""Results files, the contract every reader is built on: :mod:`.record` (the record and its schema), :mod:`.fields`
(typed fields of untrusted JSON), :mod:`.store` (the one loader: validate, skip bad files with one line),
:mod:`.rescore` (recompute every metric from the raw ``.npz``) and :mod:`.compare` (paired comparisons)."""
