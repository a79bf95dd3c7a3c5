"""align_target resumes: a killed run (SIGKILL), a full disk or a damaged block is taken up by the
rerun, which aligns only the photos not finished and writes the bytes of an uninterrupted run."""
import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from staged_fer import store
from staged_fer.cli import run_stage
from tests.params_baseline import baseline_params
from tests.test_align_stage import _stage, assert_same_outputs

REPO = Path(__file__).resolve().parents[1]
BLOCK = 4   # photos per shard here, so that a few dozen photos make many blocks


@pytest.fixture(scope="module")
def tree(module_tmp):
    from staged_fer.synthetic.sfew import write_sfew_tree
    root = module_tmp("sfew") / "SFEW_2.0"
    write_sfew_tree(root, 3, 2, 6, 0)   # 21 Train, 14 Val, 6 Test photos: 11 blocks
    return root


def _params(folder: Path, root: Path, workers: int = 1) -> Path:
    params = baseline_params()
    params["target"]["root"] = str(root)
    params["align"].update({"landmarks": "dlib", "workers": workers})
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def _argv(params: Path, out: Path) -> list[str]:
    return ["--params", str(params), "--out", str(out / "target"), "--log", str(out / "log.csv"),
            "--reports", str(out / "reports"), "--metrics", str(out / "align.json")]


def _work(params: Path) -> Path:
    """The one keyed work folder of the run with these params."""
    folders = list((params.parent / ".resume" / "align_target").iterdir())
    assert len(folders) == 1
    return folders[0]


def _done(work: Path) -> list[int]:
    return sorted(int(p.stem.split("-")[1]) for p in work.glob("block-*.npz"))


@pytest.fixture(scope="module")
def reference(tree, module_tmp):
    """An uninterrupted run's outputs."""
    folder = module_tmp("reference")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(store, "SHARD_PHOTOS", BLOCK)
        assert run_stage(_stage().main, _argv(_params(folder, tree), folder / "out")) == 0
    assert not (folder / ".resume").exists()   # a finished run leaves no work behind
    return folder / "out"


def _photos(tree: Path) -> int:
    return sum(1 for p in tree.rglob("*.png"))


def _aligning_line(out: str) -> str:
    return next(line for line in out.splitlines() if line.startswith("aligning "))


@pytest.mark.slow
def test_a_killed_run_resumes_from_its_finished_blocks_with_the_same_bytes(tree, reference, tmp_path, capsys):
    params = _params(tmp_path, tree)
    out = tmp_path / "out"
    code = (f"import runpy, sys; import staged_fer.store as s; s.SHARD_PHOTOS = {BLOCK}; "
            f"sys.argv = ['align_target.py', *{_argv(params, out)!r}]; "
            "runpy.run_path('stages/align_target.py', run_name='__main__')")
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    work_root = tmp_path / ".resume" / "align_target"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if work_root.is_dir() and any(len(_done(w)) >= 2 for w in work_root.iterdir()):
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the run ended before it could be killed partway"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not out.exists()
    work = _work(params)
    done = _done(work)
    n = _photos(tree)
    blocks = -(-n // BLOCK)
    assert 2 <= len(done) < blocks
    inodes = {k: (work / store.shard_name(k)).stat().st_ino for k in done}

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(store, "SHARD_PHOTOS", BLOCK)
        assert run_stage(_stage().main, _argv(_params(tmp_path, tree, workers=2), out)) == 0
    finished = sum(min(BLOCK, n - k * BLOCK) for k in done)
    assert _aligning_line(capsys.readouterr().out).startswith(
        f"aligning {n - finished} of {n} images from {tree} ({finished} aligned before")
    # The blocks finished before the kill were not aligned again: their shards are the same files.
    assert {k: (out / "target" / store.shard_name(k)).stat().st_ino for k in done} == inodes
    assert_same_outputs(reference, out)
    assert not (tmp_path / ".resume").exists()


def test_a_full_disk_stops_with_one_line_and_the_rerun_resumes(tree, reference, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(store, "SHARD_PHOTOS", BLOCK)
    write_shard = store.write_shard
    calls = []

    def fills_up(path, faces):
        calls.append(path)
        if len(calls) == 3:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return write_shard(path, faces)

    monkeypatch.setattr(store, "write_shard", fills_up)
    params = _params(tmp_path, tree)
    out = tmp_path / "out"
    assert run_stage(_stage().main, _argv(params, out)) == 1
    err = capsys.readouterr().err.strip().splitlines()
    work = _work(params)
    assert err[-1] == (f"error: {work}: disk full (No space left on device) writing block 3 of 11; "
                       "2 finished blocks are kept there: free space and rerun to go on from them")
    assert not out.exists() and _done(work) == [0, 1]

    monkeypatch.setattr(store, "write_shard", write_shard)
    assert run_stage(_stage().main, _argv(params, out)) == 0
    n = _photos(tree)
    assert f"aligning {n - 2 * BLOCK} of {n} images" in _aligning_line(capsys.readouterr().out)
    assert_same_outputs(reference, out)


def test_a_damaged_block_is_aligned_again(tree, reference, tmp_path, capsys, monkeypatch):
    """A finished block whose shard was cut short or changed is not trusted: its record names
    the shard's hash."""
    monkeypatch.setattr(store, "SHARD_PHOTOS", BLOCK)
    write_shard = store.write_shard

    def stops(path, faces):
        if path.name == store.shard_name(3):
            raise KeyboardInterrupt   # an interrupted run, after blocks 0..2
        return write_shard(path, faces)

    params = _params(tmp_path, tree)
    out = tmp_path / "out"
    monkeypatch.setattr(store, "write_shard", stops)
    with pytest.raises(KeyboardInterrupt):
        run_stage(_stage().main, _argv(params, out))
    monkeypatch.setattr(store, "write_shard", write_shard)
    work = _work(params)
    assert _done(work) == [0, 1, 2]
    shard = work / store.shard_name(1)
    data = bytearray(shard.read_bytes())
    data[-1] ^= 0xFF
    shard.write_bytes(data)                       # changed content, same length
    with open(work / store.shard_name(2), "r+b") as fh:
        fh.truncate(shard.stat().st_size // 2)    # cut short
    capsys.readouterr()
    assert run_stage(_stage().main, _argv(params, out)) == 0
    n = _photos(tree)
    assert f"aligning {n - BLOCK} of {n} images" in _aligning_line(capsys.readouterr().out)
    assert_same_outputs(reference, out)
