"""Degradation sensitivity on the photos of a labelled set (``fiqa-bench train-baseline data SET``, e.g. the
eval-part set): the undegraded rows' source photos, each degraded here for the (kind, level) pairs asked for.

Each source photo is decoded and degraded as a whole loose photo (as the benchmark and the labelled sets degrade,
so JPEG blocks and noise act at the photo's own resolution), aligned with the photo's stored landmarks (and box),
and scored; so is the photo itself. Free parameters: the noise ``seed`` is the photo's row number in the set; the
others (motion-blur angle, occluder position, brightness sign) are drawn by the kind's own rule from
``numpy.random.default_rng(row)``. The table is :func:`fiqa_bench.analyses.sensitivity.sensitivity`, over the set's
identities.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from fiqa_bench.analyses.sensitivity import Copies, score_faces
from fiqa_bench.data.degradations import DEGRADATIONS, apply_record


def copy_record(kind: str, level: str, row: int, image_shape: tuple, box: Any) -> dict:
    """The degradation record of photo ``row``'s copy at (kind, level) (see the module's note on free parameters)."""
    deg = DEGRADATIONS[kind]
    free = deg.draw(np.random.default_rng(int(row)), tuple(image_shape), box)
    if "seed" in free:
        free["seed"] = int(row)
    return {"name": kind, "level": level, "params": {**deg.levels[level], **free}}


def set_photos(set_folder: str, limit: int = 0):
    """(photos as :class:`fiqa_bench.faces.Face`, their row numbers, identities, source paths) of the set's undegraded
    rows (the first ``limit`` if > 0)."""
    from fiqa_bench.errors import FiqaBenchError
    from fiqa_bench.faces import Face, load_image
    from fiqa_bench.training.baselines.data import BaselineSet

    data = BaselineSet.load(set_folder)
    if data.landmarks is None or data.boxes is None:
        raise FiqaBenchError(f"{set_folder}: the set stores no landmarks (built before they were kept); build it again")
    rows = np.flatnonzero(data.clean)
    if limit:
        rows = rows[:limit]
    assert data.data.sources is not None  # filled in by TrainingSet.__post_init__
    photos = []
    for i in rows.tolist():
        src = str(data.data.sources[i])
        box = data.boxes[i]
        photos.append(Face(load_image(src), data.landmarks[i], None if not np.isfinite(box).all() else box, src))
    return photos, rows, data.data.identities[rows], [str(data.data.sources[i]) for i in rows.tolist()]


def degraded_faces(photos: Sequence[Any], rows: Sequence[int], kind: str, level: str) -> list:
    """The photos' copies at (kind, level): the whole photo degraded, the photo's landmarks and box kept."""
    from fiqa_bench.faces import Face

    out = []
    for face, row in zip(photos, rows):
        box = None if face.box is None else face.box.tolist()
        record = copy_record(kind, level, int(row), face.image.shape, box)
        out.append(Face(apply_record(face.image, record), face.landmarks, face.box, face.path))
    return out


def set_copies(
    set_folder: str, strengths: Sequence[tuple[str, str]], method: Any, who: str, limit: int = 0, batch: int = 256
) -> tuple[Copies, int]:
    """(:class:`Copies` of the set's photos for every strength asked, in that order, photo by photo; photos). The
    copies are made and scored ``batch`` photos at a time."""
    photos, rows, identities, sources = set_photos(set_folder, limit)
    base = score_faces(method, photos, who)
    kind, level, subject, worse, better, names = [], [], [], [], [], []
    for k, lv in strengths:
        for s in range(0, len(photos), batch):
            worse.append(score_faces(method, degraded_faces(photos[s : s + batch], rows[s : s + batch], k, lv), who))
        kind += [k] * len(photos)
        level += [lv] * len(photos)
        subject += identities.tolist()
        better.append(base)
        names += sources
    return (
        Copies(
            kind=kind,
            level=level,
            subject=subject,
            copy_score=np.concatenate(worse) if worse else [],
            source_score=np.concatenate(better) if better else [],
            copy_name=[f"{n} ({k} {lv})" for n, k, lv in zip(names, kind, level)],
            source_name=names,
        ),
        len(photos),
    )
