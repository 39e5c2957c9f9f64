"""The file names of the two prepared layouts, in one place: ``fiqa-bench prepare`` (:mod:`fiqa_bench.data.prepare`)
writes them and the protocol readers (``protocols/ijb.py``, ``protocols/ytf.py``) read and sniff them. They live in
the core so that the data-set builder never imports a protocol plugin; the readers import them from here."""

from __future__ import annotations

#: The JSON file at a prepared layout's root (its name, layout and conventions).
LAYOUT_FILE = "benchmark.json"

# IJB (insightface) layout: loose_crop/<image>, meta/<name><suffix>
IJB_IMAGES_DIR = "loose_crop"
IJB_META_DIR = "meta"
IJB_FACES_SUFFIX = "_face_tid_mid.txt"
IJB_PAIRS_SUFFIX = "_template_pair_label.txt"
IJB_LANDMARKS_SUFFIX = "_name_5pts_score.txt"
IJB_SUBJECTS_SUFFIX = "_tid_sid.txt"

# YouTube Faces layout: the official names; prepare writes the first of each (the reader accepts them all)
YTF_SPLITS_CANDIDATES = ("splits.txt", "meta_data/meta_and_splits.mat", "meta_and_splits.mat", "Youtube_splits.mat")
YTF_FRAME_DIRS = ("frame_images_DB", "aligned_images_DB")
YTF_LANDMARKS_SUFFIX = "_name_5pts_score.txt"
