"""The face store: memory-mapped shards read by row, refused with one line when damaged."""
import numpy as np
import pytest

from staged_fer import store
from staged_fer.errors import PipelineError
from staged_fer.io import load_npz, save_npz

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
