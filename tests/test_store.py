"""The face store: memory-mapped shards read by row, refused with one line when damaged."""
import numpy as np
import pytest

from staged_fer import store
from staged_fer.errors import PipelineError
from staged_fer.io import NpzColumns, load_npz, save_npz

SIZE = 8


def _write(folder, counts=(3, 0, 2)):
    rng = np.random.default_rng(0)
    faces = [rng.integers(0, 256, (n, SIZE, SIZE), dtype=np.uint8) for n in counts]
    shas = [store.write_shard(folder / store.shard_name(k), f) for k, f in enumerate(faces)]
    n = sum(counts)
    index = {"labels": np.arange(n, dtype=np.int64) % 7, "split": np.array(["Train"] * n),
             "paths": np.array([f"p{i}.png" for i in range(n)]), "outcome": np.array(["aligned"] * n)}
    store.write_index(folder / store.INDEX, index, counts, shas, SIZE, source="dir", align="{}")
    return np.concatenate(faces)


def test_rows_are_read_across_shards_in_any_order(tmp_path):
    faces = _write(tmp_path)
    data = store.open_store(tmp_path)
    images = data["images"]
    assert images.shape == (5, SIZE, SIZE) and images.dtype == np.uint8 and len(images) == 5
    assert (np.asarray(images) == faces).all()
    rows = np.array([4, 0, 3, 0])
    assert (images[rows] == faces[rows]).all()
    mask = np.array([False, True, False, True, True])
    assert (images[mask] == faces[mask]).all() and (images[2] == faces[2]).all()
    view = store.FaceRows(images, np.array([4, 1]))
    assert (view[[1, 0]] == faces[[1, 4]]).all() and (view.select(np.array([False, True]))[:] == faces[[1]]).all()
    assert str(data["source"]) == "dir" and data["paths"].tolist() == [f"p{i}.png" for i in range(5)]


def test_a_truncated_shard_is_refused_naming_it(tmp_path):
    _write(tmp_path)
    shard = tmp_path / store.shard_name(2)
    shard.write_bytes(shard.read_bytes()[:-5])
    with pytest.raises(PipelineError, match=rf"^{shard}: truncated or padded shard \(\d+ bytes, expected \d+\)"):
        store.open_store(tmp_path)


def test_an_index_that_disagrees_with_its_shards_is_refused_naming_the_file(tmp_path):
    _write(tmp_path)
    index = load_npz(tmp_path / store.INDEX)
    save_npz(tmp_path / store.INDEX, **{**index, "shard_rows": np.array([2, 1, 2])})
    with pytest.raises(PipelineError, match=rf"^{tmp_path / store.shard_name(0)}: holds uint8 \(3, 8, 8\) "
                                            r"but the index lists uint8 \(2, 8, 8\)"):
        store.open_store(tmp_path)
    save_npz(tmp_path / store.INDEX, **{**index, "labels": index["labels"][:-1]})
    with pytest.raises(PipelineError, match=rf"^{tmp_path / store.INDEX}: array `labels` has 4 rows but its "
                                            "shards list 5 faces"):
        store.open_store(tmp_path)


def test_a_missing_shard_or_index_is_refused_naming_it(tmp_path):
    with pytest.raises(PipelineError, match=rf"^{tmp_path}: not a face store \(no index.npz\)"):
        store.open_store(tmp_path)
    _write(tmp_path)
    (tmp_path / store.shard_name(1)).unlink()
    with pytest.raises(PipelineError, match=rf"^{tmp_path / store.shard_name(1)}: shard missing"):
        store.open_store(tmp_path)


def test_a_shard_is_verified_by_its_hash(tmp_path):
    faces = np.ones((2, SIZE, SIZE), np.uint8)
    path = tmp_path / store.shard_name(0)
    sha = store.write_shard(path, faces)
    assert store.verify_shard(path, 2, SIZE, sha)
    data = bytearray(path.read_bytes())
    data[-1] = 7
    path.write_bytes(data)
    assert not store.verify_shard(path, 2, SIZE, sha) and store.open_shard(path, 2, SIZE)[1, -1, -1] == 7


def test_work_keys_follow_the_content_not_the_order_of_a_mapping():
    from staged_fer.workdir import key_of
    snapshot = {"b.png": (1, 2, 3), "a.png": (4, 5, 6)}
    key = key_of({"size": 256}, snapshot, [("a.png", "Train", 0)])
    assert key == key_of({"size": 256}, dict(reversed(snapshot.items())), [("a.png", "Train", 0)])
    assert len({key, key_of({"size": 128}, snapshot, [("a.png", "Train", 0)]),
                key_of({"size": 256}, {**snapshot, "a.png": (4, 5, 7)}, [("a.png", "Train", 0)]),
                key_of({"size": 256}, snapshot, [("a.png", "Val", 0)])}) == 4


def test_the_index_is_read_a_column_at_a_time_and_only_when_asked_for(tmp_path, monkeypatch):
    _write(tmp_path, counts=(3, 4))
    data = store.open_store(tmp_path)
    assert set(data) == {"labels", "split", "paths", "outcome", "source", "align", "images"}
    assert "shard_rows" not in data and "outcome" in data and "subset" not in data
    read = []
    load = np.load
    monkeypatch.setattr(np, "load", lambda *a, **k: (read.append(a[0]), load(*a, **k))[1])
    blocks = list(data.blocks(("split", "labels"), rows=3))   # streamed: the columns are not read whole
    assert [len(b["labels"]) for b in blocks] == [3, 3, 1] and read == []
    assert np.concatenate([b["labels"] for b in blocks]).tolist() == [i % 7 for i in range(7)]
    assert data["labels"].tolist() == [i % 7 for i in range(7)] and len(read) == 1
    assert data["labels"] is data["labels"] and len(read) == 1          # kept once read
    assert [len(b["labels"]) for b in data.blocks(("labels", "split"), rows=5)] == [5, 2] and len(read) == 1


def test_a_bank_cut_from_blocks_is_the_one_cut_from_whole_columns(tmp_path, monkeypatch):
    from staged_fer.data.splits import target_bank
    blocks = NpzColumns.blocks
    monkeypatch.setattr(NpzColumns, "blocks", lambda self, keys: blocks(self, keys, rows=2))   # 9 faces: 5 blocks
    _write(tmp_path, counts=(5, 4))
    data = store.open_store(tmp_path)
    whole = {k: data[k] for k in ("labels", "split", "paths", "outcome", "images")}
    whole["split"] = np.array(["Train", "Val", "Train"] * 3)
    whole["outcome"] = np.array(["aligned", "aligned", "fallback"] * 3)
    save_npz(tmp_path / store.INDEX, **{**load_npz(tmp_path / store.INDEX), "split": whole["split"],
                                        "outcome": whole["outcome"]})
    for split in ("Train", "Val"):
        by_blocks = target_bank(store.open_store(tmp_path), split)
        in_memory = target_bank(whole, split)
        assert by_blocks.images.rows.tolist() == in_memory.images.rows.tolist() and by_blocks.labels.dtype == np.int64
        assert by_blocks.labels.tolist() == in_memory.labels.tolist() and len(by_blocks) == 3


def test_a_damaged_index_column_is_named(tmp_path):
    _write(tmp_path)
    raw = bytearray((tmp_path / store.INDEX).read_bytes())
    at = raw.index("p4.png".encode("utf-32-le"))   # inside the `paths` column's data
    raw[at] ^= 0xFF
    (tmp_path / store.INDEX).write_bytes(bytes(raw))
    # Named when the store is opened (a small column is read whole with its header) or when the
    # column is first read (a large one), never taken as data.
    with pytest.raises(PipelineError, match=rf"^{tmp_path / store.INDEX}: .*\(Bad CRC-32 for file 'paths.npy'\)"):
        store.open_store(tmp_path)["paths"]
