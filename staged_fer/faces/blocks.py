"""Alignment written block by block into a face store, and resumed after a kill.

The photos (sorted by path) are cut into blocks of ``store.SHARD_PHOTOS``. When a block's
results are all in, its kept faces become one shard and everything else about its photos
(what the log, the counts and the contact sheets need) a record beside it, in a work folder
outside DVC's outputs: ``.resume/align_target/<key>/``, keyed by the params, the photo list
and the raw tree's stat snapshot. A rerun with the same key takes a block as done only when
its record reads and its shard is complete with the content hash the record names, so a
killed run loses at most the blocks in flight, and the rerun aligns only the others. Since
the blocks follow the photo order, the outputs are the same bytes however often the run was
interrupted and whatever the number of workers.

The published store links the work folder's shards (hard links: a face is written once) and
adds its index; the log, counts and sheets are made from the records, one block at a time.
"""
from __future__ import annotations

import errno
import itertools
from contextlib import closing
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np

from .. import store
from ..errors import PipelineError
from ..io import Pieces, atomic_folder, load_npz, save_npz
from ..workdir import KeyedDir
from .align_params import AlignConfig
from .landmarks import FanLandmarker
from .photos import Photos
from .pipeline import THUMB, align_stream
from .search import ALIGNED, FALLBACK, ImageTask, Result
from .task_table import TaskTable


def kept(r: Result) -> bool:
    """The store's contract: aligned faces everywhere, fallback crops in Val/Test only."""
    return r.outcome == ALIGNED or (r.outcome == FALLBACK and r.task.split != "Train")


def _floats(values, width: int) -> np.ndarray:
    return np.array([np.full(width, np.nan) if v is None else np.asarray(v, np.float64).ravel()
                     for v in values], np.float64).reshape(len(values), width)


def _record(results: Sequence[Result], sha256: str, rows: int) -> dict[str, np.ndarray]:
    """Everything about a block's photos but the kept faces (those are its shard)."""
    text = {"photo": [r.task.path for r in results], "split": [r.task.split for r in results],
            "skip": [r.task.skip_reason for r in results], "outcome": [r.outcome for r in results],
            "reason": [r.reason for r in results], "detector": [r.detector for r in results],
            "attempt": [r.attempt for r in results]}
    thumbs = [r.thumb for r in results if r.thumb is not None]
    padded = np.zeros((len(thumbs), THUMB, THUMB), np.uint8)
    for i, t in enumerate(thumbs):
        padded[i, :t.shape[0], :t.shape[1]] = t
    has_face = np.array([kept(r) for r in results], bool)
    has_thumb = np.array([r.thumb is not None for r in results], bool)
    return {**{k: np.array(v, dtype=str).reshape(len(results)) for k, v in text.items()},
            "label": np.array([r.task.label for r in results], np.int64),
            "box": _floats([r.box for r in results], 4), "fit": _floats([r.fit for r in results], 1),
            "eyes": _floats([r.eyes for r in results], 4), "angle": _floats([r.angle_deg for r in results], 1),
            "shape": np.array([r.shape or (-1, -1) for r in results], np.int64).reshape(len(results), 2),
            # Each photo's row in the shard and in ``thumbs``, -1 for none.
            "face_row": np.where(has_face, np.cumsum(has_face) - 1, -1).astype(np.int64),
            "thumb_of": np.where(has_thumb, np.cumsum(has_thumb) - 1, -1).astype(np.int64),
            "thumbs": padded, "thumb_shape": np.array([t.shape for t in thumbs], np.int64).reshape(len(thumbs), 2),
            "shard_sha256": np.array(sha256), "shard_rows": np.array(rows)}


def _none_or(values: np.ndarray):
    return None if np.isnan(values).any() else values


def _results(rec: dict[str, np.ndarray], faces: np.ndarray) -> list[Result]:
    """A block's results as the aligner made them (without the landmarks, which only the
    search itself uses); faces are views of the block's shard (mapped, read when drawn).
    Thumbnails and eyes are copies: a result kept for a sheet must not pin its block's arrays."""
    out = []
    for i in range(len(rec["photo"])):
        t = rec["thumb_of"][i]
        box, eyes = _none_or(rec["box"][i]), _none_or(rec["eyes"][i])
        fit, angle = _none_or(rec["fit"][i]), _none_or(rec["angle"][i])
        h, w = rec["thumb_shape"][t] if t >= 0 else (0, 0)
        out.append(Result(
            ImageTask(str(rec["photo"][i]), str(rec["split"][i]), int(rec["label"][i]), str(rec["skip"][i])),
            str(rec["outcome"][i]), str(rec["reason"][i]), str(rec["detector"][i]),
            tuple(float(v) for v in box) if box is not None else None,
            float(fit[0]) if fit is not None else None,
            eyes.reshape(2, 2).copy() if eyes is not None else None,
            float(angle[0]) if angle is not None else None,
            faces[rec["face_row"][i]] if rec["face_row"][i] >= 0 else None,
            rec["thumbs"][t, :h, :w].copy() if t >= 0 else None,
            tuple(int(v) for v in rec["shape"][i]) if rec["shape"][i][0] >= 0 else None,
            str(rec["attempt"][i])))
    return out


def _disk_full(exc: OSError) -> bool:
    return exc.errno in (errno.ENOSPC, errno.EDQUOT)


class BlockStore(KeyedDir):
    """The finished blocks of one alignment run (``dir``), and the store made of them."""

    def __init__(self, root: str | Path, key: str, tasks: TaskTable, size: int):
        super().__init__(root, key)
        self.size, self.tasks = size, tasks
        # Each block's rows of ``tasks``.
        self.blocks = [range(i, min(i + store.SHARD_PHOTOS, len(tasks))) for i in range(0, len(tasks), store.SHARD_PHOTOS)]

    def pending(self) -> list[int]:
        """The blocks not finished yet (checked once: a check reads every finished shard)."""
        if not hasattr(self, "_pending"):
            self._pending = [k for k in range(len(self.blocks)) if not self.done(k)]
        return self._pending

    def _shard(self, k: int) -> Path:
        return self.dir / store.shard_name(k)

    def _record_path(self, k: int) -> Path:
        return self.dir / f"block-{k:05d}.npz"

    def _read_record(self, k: int) -> dict[str, np.ndarray] | None:
        try:
            return load_npz(self._record_path(k))
        except (OSError, ValueError, KeyError):
            return None

    def done(self, k: int) -> bool:
        """Whether block ``k`` finished: its record reads and its shard has the recorded hash."""
        rec = self._read_record(k)
        return rec is not None and len(rec.get("photo", ())) == len(self.blocks[k]) and \
            store.verify_shard(self._shard(k), int(rec["shard_rows"]), self.size, str(rec["shard_sha256"]))

    def write(self, k: int, results: Sequence[Result]) -> None:
        """The shard, then the record that vouches for it."""
        faces = [r.face for r in results if kept(r)]
        stack = np.stack(faces) if faces else np.zeros((0, self.size, self.size), np.uint8)
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            sha = store.write_shard(self._shard(k), stack)
            save_npz(self._record_path(k), **_record(results, sha, len(faces)))
        except OSError as exc:
            if not _disk_full(exc):
                raise
            done = sum(self.done(j) for j in range(len(self.blocks)))
            raise PipelineError(f"{self.dir}: disk full ({exc.strerror}) writing block {k + 1} of "
                                f"{len(self.blocks)}; {done} finished blocks are kept there: free space "
                                "and rerun to go on from them") from None

    def results(self, k: int) -> list[Result]:
        rec = self._read_record(k)
        if rec is None:
            raise PipelineError(f"{self._record_path(k)}: block record unreadable; rerun the stage")
        faces = store.open_shard(self._shard(k), int(rec["shard_rows"]), self.size)
        return _results(rec, faces)

    def each_block(self) -> Iterator[list[Result]]:
        """Every photo's result, a block at a time, in photo order."""
        for k in range(len(self.blocks)):
            yield self.results(k)

    def align(self, root: str | Path | Photos, cfg: AlignConfig, fan: FanLandmarker | None,
              progress: Callable[[int, int], None] | None = None) -> int:
        """Align the photos of the blocks not done yet, writing each block as it completes;
        returns how many photos that was."""
        todo = self.pending()
        if len(todo) == len(self.blocks):
            tasks = self.tasks   # not a copy: a photo's row is held once
        else:
            rows = [np.asarray(self.blocks[k], np.int64) for k in todo]
            tasks = self.tasks[np.concatenate(rows)] if rows else self.tasks[:0]
        results = align_stream(tasks, root, cfg, fan)
        with closing(results):   # stops the workers on an error
            done = 0
            for k in todo:
                block = list(itertools.islice(results, len(self.blocks[k])))
                self.write(k, block)
                done += len(block)
                # Its faces go now, not when the next block's list replaces it: one block in memory.
                del block
                if progress:
                    progress(done, len(tasks))
        return len(tasks)

    def _index_pieces(self) -> Iterator[tuple[dict[str, np.ndarray], dict[str, np.ndarray]]]:
        """Each block's record, and its part of the store index's columns (its kept photos)."""
        for k in range(len(self.blocks)):
            rec = self._read_record(k)
            if rec is None:
                raise PipelineError(f"{self._record_path(k)}: block record unreadable; rerun the stage")
            keep = rec["face_row"] >= 0
            yield rec, {"labels": rec["label"][keep], "split": rec["split"][keep], "paths": rec["photo"][keep],
                        "outcome": rec["outcome"][keep]}

    def publish(self, out: str | Path, **scalars) -> int:
        """The face store at ``out``: the blocks' shards linked in, and the index; returns its faces.

        The index's columns are written a block at a time, never held whole: the records are
        read once for the shard table and the columns' lengths and string widths, then once more
        as the columns are written."""
        rows, shas = [], []
        dtypes = {key: np.dtype(np.int64 if key == "labels" else "<U1") for key in store.FACE_ARRAYS}
        for rec, columns in self._index_pieces():
            rows.append(int(rec["shard_rows"]))
            shas.append(str(rec["shard_sha256"]))
            for key, column in columns.items():
                dtypes[key] = np.promote_types(dtypes[key], column.dtype)
        faces = {key: Pieces(dtypes[key], sum(rows), lambda key=key: (c[key] for _, c in self._index_pieces()))
                 for key in store.FACE_ARRAYS}
        with atomic_folder(out) as tmp:
            store.link_tree(self.dir, tmp, store.SHARD_GLOB)
            store.write_index(tmp / store.INDEX, faces, rows, shas, self.size, **scalars)
        return int(sum(rows))
