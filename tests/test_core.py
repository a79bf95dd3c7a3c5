"""The shared plumbing: typed params, atomic and reproducible writers, the data schemes."""
from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pytest
import yaml

from staged_fer.params import parse, read_stage_params
from staged_fer.data.splits import SplitsParams, build_split, load_split, save_split
from staged_fer.errors import PipelineError
from staged_fer.io import Pieces, atomic_path, load_npz, save_npz

ROOT = Path(__file__).resolve().parents[1]
PARAMS = yaml.safe_load((ROOT / "params.yaml").read_text())
SCHEMES = read_stage_params(PARAMS, SplitsParams).schemes


@dataclass(frozen=True)
class Inner:
    rate: float
    kind: Literal["a", "b"]


@dataclass(frozen=True)
class Outer:
    name: str
    count: int
    inner: Inner
    path: str | None


def test_parse_builds_nested_dataclasses():
    cfg = parse(Outer, {"name": "x", "count": 3, "inner": {"rate": 1, "kind": "b"}, "path": None}, "sec")
    assert cfg == Outer("x", 3, Inner(1.0, "b"), None)
    assert isinstance(cfg.inner.rate, float)


@pytest.mark.parametrize("raw, message", [
    ({"name": "x", "count": 3, "inner": {"rate": 1, "kind": "b"}, "path": None, "extra": 1}, "unknown key `sec.extra`"),
    ({"name": "x", "inner": {"rate": 1, "kind": "b"}, "path": None}, "missing key `sec.count`"),
    ({"name": "x", "count": "3", "inner": {"rate": 1, "kind": "b"}, "path": None}, "`sec.count` must be an integer"),
    ({"name": "x", "count": True, "inner": {"rate": 1, "kind": "b"}, "path": None}, "`sec.count` must be an integer"),
    ({"name": "x", "count": 3, "inner": {"rate": 1, "kind": "c"}, "path": None}, "`sec.inner.kind` is 'c'; expected one of"),
    ({"name": "x", "count": 3, "inner": {"rate": 1, "kind": "a", "typo": 0}, "path": None}, "unknown key `sec.inner.typo`"),
])
def test_parse_names_the_bad_key(raw, message):
    with pytest.raises(PipelineError, match=message.replace("(", r"\(").replace("[", r"\[")):
        parse(Outer, raw, "sec")


def test_save_npz_is_byte_reproducible_and_round_trips(tmp_path):
    arrays = {"images": np.arange(2 * 4 * 4, dtype=np.uint8).reshape(2, 4, 4),
              "usage": np.array(["Training", "PublicTest"]), "source": np.array("synthetic")}
    save_npz(tmp_path / "a.npz", **arrays)
    time.sleep(1.1)  # a writer that stamps the time would now differ
    save_npz(tmp_path / "b.npz", **arrays)
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    loaded = load_npz(tmp_path / "a.npz")
    assert set(loaded) == set(arrays)
    for key, value in arrays.items():
        np.testing.assert_array_equal(loaded[key], value)


def test_an_array_written_in_pieces_has_the_bytes_of_the_joined_array(tmp_path):
    paths = [np.array(["Train/a.png", "Val/Sad/b.png"]), np.array([], "<U1"), np.array(["Test/longer-name-é.png"])]
    labels = [np.array([3, 4]), np.array([], np.int64), np.array([-1])]
    joined = {"paths": np.concatenate(paths), "labels": np.concatenate(labels)}
    save_npz(tmp_path / "joined.npz", **joined)
    save_npz(tmp_path / "pieces.npz", paths=Pieces(joined["paths"].dtype, 3, lambda: iter(paths)),
             labels=Pieces(np.int64, 3, lambda: iter(labels)))
    assert (tmp_path / "pieces.npz").read_bytes() == (tmp_path / "joined.npz").read_bytes()
    with pytest.raises(ValueError, match="2 items written, 3 announced"):
        save_npz(tmp_path / "short.npz", labels=Pieces(np.int64, 3, lambda: iter(labels[:2])))
    assert not list(tmp_path.glob("short*"))   # nothing half-written left


def test_atomic_path_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out" / "file.txt"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert not target.exists()
    assert list((tmp_path / "out").iterdir()) == []


def _fake_sources():
    rng = np.random.default_rng(0)
    usage = np.array(["Training"] * 6 + ["PublicTest"] * 3 + ["PrivateTest"] * 2)
    fer = {"images": rng.integers(0, 256, (11, 48, 48), dtype=np.uint8),
           "labels": np.arange(11) % 7, "usage": usage, "source": np.array("file")}
    target = {"images": rng.integers(0, 256, (7, 256, 256), dtype=np.uint8),
              "labels": np.array([0, 1, 2, 3, 4, 5, -1]),
              "split": np.array(["Train", "Train", "Train", "Val", "Val", "Val", "Test"]),
              "outcome": np.array(["aligned", "aligned", "fallback", "aligned", "fallback", "aligned", "aligned"]),
              "paths": np.array([f"p{i}.png" for i in range(7)]), "source": np.array("synthetic")}
    return fer, target


@pytest.mark.parametrize("scheme, train_sizes, val_sizes, synthetic", [
    ("fer28", [6], [3], False),
    ("fer32", [6, 3], [2], False),
    ("fer32_target", [6, 3, 2], [3], True),   # the fallback Train face is never trained on
    ("target", [2], [3], True),            # fallback Val faces are scored; Test is unlabelled
    ("none", [], [], False),
])
def test_schemes_follow_the_paper(scheme, train_sizes, val_sizes, synthetic, tmp_path):
    fer, target = _fake_sources()
    split = build_split(scheme, SCHEMES.get(scheme), {"fer": fer, "target": target})
    assert [len(b) for b in split.train] == train_sizes
    assert [len(b) for b in split.val] == val_sizes
    assert split.synthetic is synthetic
    sources = {"fer": tmp_path / "fer.npz", "target": tmp_path / "target.npz"}
    save_npz(sources["fer"], **fer)
    save_npz(sources["target"], **target)
    save_split(tmp_path / "s", split, sources)
    back = load_split(tmp_path / "s")
    # Banks are rows of their sources, linked in beside the split file: no face is copied.
    used = {b.source for b in split.train + split.val}
    assert sorted(p.name for p in (tmp_path / "s").iterdir()) == sorted({"split.npz", *(f"{u}.npz" for u in used)})
    for name in used:
        assert (tmp_path / "s" / f"{name}.npz").stat().st_ino == sources[name].stat().st_ino
    assert back.scheme == scheme and back.synthetic == synthetic
    for a, b in zip(split.train + split.val, back.train + back.val):
        assert a.name == b.name
        np.testing.assert_array_equal(a.images, b.images)
        np.testing.assert_array_equal(a.labels, b.labels)


def _run_build_splits(tmp_path, params):
    fer, target = _fake_sources()
    save_npz(tmp_path / "fer.npz", **fer)
    save_npz(tmp_path / "target.npz", **target)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"schemes": PARAMS["schemes"], **params}, sort_keys=False))
    cmd = [sys.executable, str(ROOT / "stages" / "build_splits.py"), "--params", str(tmp_path / "params.yaml"),
           "--fer", str(tmp_path / "fer.npz"), "--target", str(tmp_path / "target.npz"),
           "--phase1", str(tmp_path / "out" / "s1"), "--phase2", str(tmp_path / "out" / "s2")]
    return subprocess.run(cmd, capture_output=True, text=True)


def test_build_splits_stage_writes_both_splits(tmp_path):
    result = _run_build_splits(tmp_path, {"phase1": {"data": "fer32"}, "phase2": {"data": "target"}})
    assert result.returncode == 0, result.stderr
    assert load_split(tmp_path / "out" / "s1").scheme == "fer32"
    assert load_split(tmp_path / "out" / "s2").scheme == "target"


def test_build_splits_stage_rejects_an_unknown_scheme_cleanly(tmp_path):
    result = _run_build_splits(tmp_path, {"phase1": {"data": "fer99"}, "phase2": {"data": "target"}})
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "error: params.yaml: `phase1.data` is 'fer99'; expected one of: fer28, fer32, fer32_target, target, none"]
    assert not (tmp_path / "out").exists()


def test_schemes_compose_registered_parts_only(tmp_path):
    """A scheme from params alone (phase 1 on the target set's Train, say); an unregistered
    part or a part without faces is named."""
    fer, target = _fake_sources()
    result = _run_build_splits(tmp_path, {"schemes": {"target_only": {"train": ["target.Train"], "val": ["fer.PrivateTest"]}},
                                          "phase1": {"data": "target_only"}, "phase2": {"data": "none"}})
    assert result.returncode == 0, result.stderr
    split = load_split(tmp_path / "out" / "s1")
    assert [b.name for b in split.train + split.val] == ["Target Train", "FER PrivateTest"]
    with pytest.raises(PipelineError, match=r"`schemes.x`: train part 'target.Test' is not registered; expected one of: "
                                            r"fer.Training, fer.PublicTest, fer.PrivateTest, target.Train, target.Val"):
        read_stage_params({"schemes": {"x": {"train": ["target.Test"], "val": ["target.Val"]}},
                           "phase1": {"data": "x"}, "phase2": {"data": "none"}}, SplitsParams)
    fer["labels"][fer["usage"] == "PrivateTest"] = -1
    with pytest.raises(PipelineError, match=r"data scheme 'fer32': FER PrivateTest \(fer.PrivateTest\) has no labelled faces"):
        build_split("fer32", SCHEMES["fer32"], {"fer": fer, "target": target})
