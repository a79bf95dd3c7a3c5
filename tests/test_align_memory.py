"""align_target's main process holds a bounded amount per photo: the aligner is replaced by one
that makes results at once, so the log, counts, sheets and index of thousands of photos are
written in seconds, and what the stage keeps is measured (tracemalloc, /proc/self/maps)."""
import gc
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from staged_fer import store
from staged_fer.faces import blocks, outputs
from staged_fer.faces.detection import ATTEMPTS
from staged_fer.faces.search import ALIGNED, Result
from tests.test_align_stage import _params, _run as run_align

SIZE = 32           # align.size: small faces, so that the picks' copies weigh little
SHARD = 64          # photos per block: thousands of photos make dozens of shards
CLASSES = ("Angry", "Disgust", "Fear", "Happy", "Sad", "Surprise", "Neutral")


def _tree(root: Path, n: int) -> Path:
    """n empty photo files, Train and Val, the seven class folders (the aligner never reads them)."""
    for i in range(n):
        folder = root / ("Train" if i % 5 else "Val") / CLASSES[i % 7]
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"photo-with-a-longish-name-{i:07d}.png").touch()
    return root


def _instant(tasks, root, cfg, fan=None):
    """Aligned results for every task, their fits spread so the worst of them lie in every block."""
    for i, t in enumerate(tasks):
        yield Result(t, ALIGNED, "", ATTEMPTS[0], (10.0, 12.0, 80.0, 80.0), 0.5 + (i * 7919 % 1000) / 2000,
                     np.array([[30.0, 40.0], [60.0, 40.0]]), 1.5, face=np.full((cfg.size, cfg.size), i % 251, np.uint8),
                     shape=(120, 100), attempt=ATTEMPTS[0])


def _mapped_shards() -> set[str]:
    return {line.split()[-1] for line in Path("/proc/self/maps").read_text().splitlines()
            if line.split()[-1].endswith(".npy") and "/faces-" in line}


@pytest.fixture
def instant(monkeypatch):
    monkeypatch.setattr(store, "SHARD_PHOTOS", SHARD)
    monkeypatch.setattr(blocks, "align_stream", _instant)


def _run(folder: Path, n: int) -> int:
    """The stage on n photos; the peak of the memory Python allocated meanwhile, in bytes."""
    params, _ = _params(folder, _tree(folder / "tree", n), size=SIZE)
    # When the collector frees the run's cyclic garbage (a closed figure's) depends on how many
    # objects the process held before: frozen, they do not count, and every run is collected alike.
    gc.collect()
    gc.freeze()
    tracemalloc.start()
    try:
        assert run_align(params, folder / "out") == 0
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        gc.unfreeze()


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="needs Linux's /proc/self/maps")
def test_the_sheets_keep_no_block_mapped(instant, tmp_path, monkeypatch):
    """A face picked for a sheet is a copy: drawing the sheets maps no shard but the last block's
    (a mapped shard's touched pages stay resident, in folios of up to 2 MiB)."""
    seen = []
    write_reports = outputs.write_reports

    def spy(*args, **kwargs):
        write_reports(*args, **kwargs)
        seen.append(_mapped_shards())
    monkeypatch.setattr(outputs, "write_reports", spy)   # the stage imports it when it is loaded
    _run(tmp_path, 16 * SHARD)
    assert len(seen) == 1 and len(seen[0]) <= 1, sorted(seen[0])


def test_main_process_memory_per_photo_is_a_few_hundred_bytes(instant, tmp_path):
    """The Python heap's peak grows with the photos by what scanning them holds (the photo table,
    a class folder's names as it is listed) only: under 1 KiB a photo (a list of results, log
    rows or faces held to the end would be tens of KiB)."""
    _run(tmp_path / "warm", 64)   # first-use costs (fonts, caches) out of the comparison
    small, large = 512, 2048
    grew = _run(tmp_path / "large", large) - _run(tmp_path / "small", small)
    assert grew / (large - small) < 1024, f"{grew / (large - small):.0f} bytes per photo"


def test_while_aligning_the_main_process_holds_tens_of_bytes_a_photo(instant, tmp_path, monkeypatch):
    """What the main process holds for the whole alignment (the photo list, the raw tree's
    snapshot, the resume key and the blocks) is its path and a few bytes more per photo: a list
    of task objects, or the snapshot as a dict, would be hundreds."""
    held = []

    def measuring(tasks, root, cfg, fan=None):
        held.append(tracemalloc.get_traced_memory()[0])
        yield from _instant(tasks, root, cfg, fan)
    monkeypatch.setattr(blocks, "align_stream", measuring)
    _run(tmp_path / "warm", 64)
    small, large = 512, 4096
    _run(tmp_path / "small", small)
    _run(tmp_path / "large", large)
    per_photo = (held[2] - held[1]) / (large - small)
    path = len("Train/Angry/photo-with-a-longish-name-0000000.png")
    assert per_photo < path + 40, f"{per_photo:.0f} bytes per photo"
