"""fiqa-bench: does your face image quality method help face recognition? Measure it.

The core package holds the interfaces (cards, records), the plugin registry, the face pipeline, the FR
backbones, metrics, caches, the runner and reports. Quality methods (``fiqa_bench.methods``) and protocols
(``fiqa_bench.protocols``) are written the way an outside author writes an adapter.
"""

__version__ = "0.1.0"
