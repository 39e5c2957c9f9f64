"""The evaluation pipeline, objects in and objects out: :mod:`.runner` (a run configuration to a results file),
:mod:`.evaluation` (score -> select -> embed -> compare -> measure), :mod:`.stages` (per-image stages over faces),
:mod:`.pairscore` (template pooling and pair scores at IJB-C scale), :mod:`.benchmark` (the protocol-independent
view of an evaluation), :mod:`.uncertainty` (bootstrap intervals over identities) and :mod:`.replicate_store`
(bootstrap replicates reused across reruns)."""
