"""Data in and out of the disk: datasets and pinned downloads, the user cache and the per-image array caches, safe
paths inside a benchmark root, atomic writes, image degradations, the identity split, and the builder of
IJB-/YTF-layout benchmarks from a folder of photos (:mod:`.prepare`) with the layouts' file names
(:mod:`.layout_files`)."""
