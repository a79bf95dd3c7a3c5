"""GPU slots (staged_fer/gpus.py): each run takes ids of its own, waits while none is free, and
a killed run frees its ids."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from staged_fer import gpus
from staged_fer.errors import PipelineError
from tests.dvc_project import ROOT

# A child that takes `k` of `ids` and reports them, then holds them until it is killed.
HOLDER = """
import sys
from pathlib import Path
from staged_fer.gpus import take
got, _ = take(sys.argv[1].split(","), int(sys.argv[2]), Path(sys.argv[3]), poll_s=0.05)
print(",".join(got), flush=True)
sys.stdin.read()
"""


def _holder(ids: str, k: int, folder) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, ids, str(k), str(folder)], cwd=ROOT,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    return proc, proc.stdout.readline().strip()


@pytest.mark.parametrize("text", ["", "0,,1", "a", "0,1,0", "-1"])
def test_bad_ids_are_refused_naming_the_list(text):
    with pytest.raises(PipelineError, match="GPUS="):
        gpus.parse_ids(text, "GPUS")


def test_parse_ids_keeps_the_order():
    assert gpus.parse_ids("3, 1,2", "GPUS") == ("3", "1", "2")


def test_a_run_needing_more_than_listed_is_refused_at_once(tmp_path):
    with pytest.raises(PipelineError, match="needs 3 GPUs but only 2 are listed"):
        gpus.take(("0", "1"), 3, tmp_path)


def test_runs_take_different_ids_wait_while_none_is_free_and_a_killed_run_frees_its_own(tmp_path):
    first, got_first = _holder("0,1", 1, tmp_path)
    second, got_second = _holder("0,1", 1, tmp_path)
    try:
        assert {got_first, got_second} == {"0", "1"}
        waited = []
        result = {}
        thread = threading.Thread(target=lambda: result.update(
            got=gpus.take(("0", "1"), 1, tmp_path, poll_s=0.05, on_wait=lambda: waited.append(1))))
        thread.start()
        time.sleep(0.5)
        assert thread.is_alive() and waited == [1]   # both taken: it waits, and says so once
        os.kill(second.pid, signal.SIGKILL)           # killed while holding: the kernel drops the lock
        thread.join(10)
        assert not thread.is_alive()
        ids, fds = result["got"]
        assert ids == (got_second,)
        for fd in fds:
            os.close(fd)
    finally:
        for proc in (first, second):
            proc.kill()
            proc.wait()


def test_all_k_or_none_are_held(tmp_path):
    first, got = _holder("0,1,2", 1, tmp_path)
    try:
        # Two of three are free: a run wanting two takes them; a second one wanting two waits,
        # holding nothing meanwhile (so it cannot starve a run that needs one).
        ids, fds = gpus.take(("0", "1", "2"), 2, tmp_path, poll_s=0.05)
        assert got not in ids and len(ids) == 2
        third = subprocess.Popen([sys.executable, "-c", HOLDER, "0,1,2", "2", str(tmp_path)], cwd=ROOT,
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        time.sleep(1.0)
        assert third.poll() is None
        first.kill()
        first.wait()
        ids_free, fds_free = gpus.take((got,), 1, tmp_path, poll_s=0.05)   # the waiting run holds none
        for fd in fds + fds_free:
            os.close(fd)
        assert third.stdout.readline().strip().count(",") == 1
        third.kill()
        third.wait()
    finally:
        first.kill()
        first.wait()


ACQUIRE = """
import json, os
from staged_fer.gpus import acquire
print(json.dumps([acquire(int(os.environ["K"]), "train_phase1", cpu_only=os.environ.get("CPU") == "1"),
                  os.environ.get("CUDA_VISIBLE_DEVICES")]))
"""


def _acquire(tmp_path, **env) -> tuple[list, str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("STAGED_FER_") and k != "CUDA_VISIBLE_DEVICES"}
    full.update(STAGED_FER_GPU_LOCKS=str(tmp_path), **env)
    result = subprocess.run([sys.executable, "-c", ACQUIRE], cwd=ROOT, env=full, capture_output=True, text=True,
                            check=True)
    return json.loads(result.stdout), result.stderr


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="checks the CPU-only record")
def test_a_stage_records_its_slot_and_says_it_is_a_slot_only_without_cuda(tmp_path):
    (grant, visible), err = _acquire(tmp_path, STAGED_FER_GPUS="4,5", K="1")
    assert grant["ids"] == ["4"] and grant["names"] is None and grant["cuda"] is False and visible == "4"
    assert err.strip() == "train_phase1: GPU 4 (no CUDA here: a slot only; the stage runs on the CPU)"
    (grant, visible), _ = _acquire(tmp_path, STAGED_FER_GPUS="4,5", K="2")
    assert grant["ids"] == ["4", "5"] and visible == "4,5"


def test_no_slots_without_the_list_or_on_the_cpu(tmp_path):
    assert _acquire(tmp_path, K="1")[0] == [None, None]
    assert _acquire(tmp_path, STAGED_FER_GPUS="0", K="1", CPU="1")[0] == [None, None]


def test_a_torchrun_worker_reports_its_launchers_grant(tmp_path):
    grant = {"ids": ["1"], "names": None, "cuda": False, "taken_at": 1.0}
    assert _acquire(tmp_path, STAGED_FER_GPUS="0,1", K="1", STAGED_FER_GPU_GRANT=json.dumps(grant))[0][0] == grant


def test_listed_ids_are_checked_against_the_machine_before_queueing(monkeypatch, capsys):
    import torch
    with pytest.raises(PipelineError, match=r"^GPUS=0,1: each run needs 3 GPUs \(`runtime.devices`\)"):
        gpus.check_listed(("0", "1"), 3)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    gpus.check_listed(("0", "1"), 1)
    assert capsys.readouterr().err == ("GPUS=0,1: no CUDA here, so the ids are slots only: at most 2 runs at "
                                       "a time, each training on the CPU (`runtime.device: auto`)\n")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    gpus.check_listed(("1", "0"), 2)
    with pytest.raises(PipelineError, match=r"^GPUS=0,2: GPU 2 is not one of the 2 this machine shows \(ids 0-1\)$"):
        gpus.check_listed(("0", "2"), 1)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    with pytest.raises(PipelineError, match="both set"):
        gpus.check_listed(("0",), 1)


def test_a_record_says_until_when_its_slots_were_held_at_least():
    record = {"ids": ["0"], "names": None, "cuda": False, "taken_at": 1.0}
    stamped = gpus.held(record)
    assert stamped["held_until"] >= time.time() - 5 and {k: stamped[k] for k in record} == record
    assert gpus.held(None) is None
