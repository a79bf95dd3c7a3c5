"""Every benchmark runs as a person runs it, at its token size (``--quick``), so that a change to
the library that breaks one fails here instead of on the next GPU or in the next person's hands.

Each script under benchmarks/ (found by listing the folder: a new one is covered at once, and
fails until TABLES says what its table looks like) runs from the repository root in a process
of its own and must exit 0 and print its table. The scripts that read ../shared/data run once
more from a copy of benchmarks/ with no ../shared beside it: each falls back to data it makes,
or says in one line what it skipped, and still exits 0.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"
SHARED_DATA = ROOT.parent / "shared" / "data"
LIBRARY = {"common.py", "crop_quality.py"}   # imported by the benchmarks, not one itself
RUN_BY = {"gpu_check.py": "gpu_check.sh"}   # run through the script that wraps it
SKIPPED = r"skipped: (no CUDA|--quick)"

# Lines each benchmark's --quick run prints: its table, with numbers in it.
TABLES = {
    "bench_align.py": [r"round 1: stage +[\d.]+ photos/s, 8/8 aligned", r"stage/plain photos/s ratio: median [\d.]+",
                       r"stage median [\d.]+, 90th percentile [\d.]+; plain median [\d.]+"],
    "bench_decode_fer.py": [r"rows: 2000", r"speed-up: [\d.]+x", r"peak memory: \d+ MB"],
    "bench_demo_stability.py": [r"(?m)^ +0 +1 +[01]\.\d{3} +[01]\.\d{3} +[01]\.\d{3} ",
                                r"worst Target Val [01]\.\d{3} .* not judged \(--quick\)"],
    "bench_dvc_status.py": [r"(?m)^folders: ", r"(?m)^archives: ", r"(?m)^  no-op status( +[\d.]+){4} +[\d.]+x$",
                            r"(?m)^  queued run +[\d.]+ +- +[\d.]+ +- +[\d.]+x$",
                            r"(?m)^  pack \(PACK=1\)( +[\d.]+){4} +[\d.]+x$",
                            r"archives / folders at 50 photos, wall \(.*\): make data [\d.]+x, .*no-op status [\d.]+x"],
    "bench_input_path.py": [r"\[1\] .*", r"\[2\] input path alone at 227 px, batch 16, 64 faces",
                            r"ImageFolder \+ DataLoader, 1 workers +[\d.]+"],
    "bench_queue_checkout.py": [r"\(one-file tree\) +[\d.]+ +[\d.]+ +1", r"(?m)^hardlink +[\d.]+ +0\.0 +100$",
                                r"(?m)^copy +[\d.]+ +[\d.]+ +100$"],
    "bench_predict.py": [r"predict: +[\d.]+ s \( *[\d.]+ photos/s; \d+ faces classified",
                         r"ratio predict / aligner: [\d.]+"],
    "bench_scale.py": [r"2 workers / 1 worker: [\d.]+x", r"\| align \| .* MiB \| [\d.]+% \|",
                       r"\| build_splits \| .* MiB \| [\d.]+% \|", r"\| train epoch \| .* MiB \| [\d.]+% \|"],
    "bench_train_step.py": [r"\[3\] alexnet +227 px, gray input: +[\d.]+ img/s", r"fused / foreach = [\d.]+x"],
    "false_accepts.py": [r"LFW subset non-faces: \d+ of 8 accepted", r"faces-dev: \d+ of 8 aligned"],
    "synthetic_detection_rate.py": [r"photos 14: frontal detector \d+/14"],
    "gpu_check.sh": [r"\| make test-gpu +\| .*\d+ (passed|skipped)",
                     r"\| train step alexnet 227 px, bf16, channels_last, batch 128 +\| " + SKIPPED,
                     r"\| train step vgg_m 224 px, bf16, channels_last, batch 128 +\| " + SKIPPED,
                     r"\| paper grid \(12 runs x 30\+30 epochs\), projected training time +\| " + SKIPPED],
}

# Without ../shared: what each benchmark that reads it prints instead.
WITHOUT_SHARED = {
    "bench_align.py": r"\Askipped: faces-dev not found at \S+\n\Z",
    "bench_decode_fer.py": r"input: generated CSV \(2000 rows\)",
    "bench_input_path.py": r"faces: random faces",
    "bench_predict.py": r"6 photos made from scikit-image's astronaut and LFW faces",
    "false_accepts.py": r"faces-dev: skipped: not found at \S+",
    "gpu_check.py": r"\| phase-1 epoch, AlexNet 227 px, real FER-2013 +\| skipped: \S+fer2013.csv.gz not found",
}


def benchmarks() -> list[str]:
    files = {p.name for p in BENCH.iterdir() if p.suffix in (".py", ".sh")} - LIBRARY
    return sorted(files - set(RUN_BY))


def run(script: Path, *args: str, cwd: Path = ROOT, timeout: int = 600) -> subprocess.CompletedProcess:
    """``script`` as a person runs it: bash for .sh, this venv's python for .py."""
    cmd = ["bash", str(script)] if script.suffix == ".sh" else [sys.executable, str(script)]
    env = {**os.environ, "TQDM_DISABLE": "1"}
    return subprocess.run(cmd + list(args), cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)


def failure(name: str, proc: subprocess.CompletedProcess) -> str:
    return (f"benchmarks/{name} exited {proc.returncode}\n--- stdout (end) ---\n{proc.stdout[-3000:]}"
            f"\n--- stderr (end) ---\n{proc.stderr[-3000:]}")


def test_every_benchmark_says_what_its_table_looks_like():
    assert set(benchmarks()) == set(TABLES), "add the benchmark's table lines to TABLES"
    assert set(WITHOUT_SHARED) == {p.name for p in BENCH.glob("*.py") if "SHARED_DATA" in p.read_text()} - LIBRARY


@pytest.mark.parametrize("name", benchmarks())
def test_benchmark_runs_at_its_token_size(name):
    proc = run(BENCH / name, "--quick")
    assert proc.returncode == 0, failure(name, proc)
    assert "Traceback" not in proc.stderr, failure(name, proc)
    for line in TABLES[name]:
        assert re.search(line, proc.stdout), f"benchmarks/{name}: no line matching {line!r}\n{proc.stdout[-3000:]}"


@pytest.fixture(scope="module")
def without_shared(module_tmp):
    """A repository root whose parent has no shared/: benchmarks/ copied (their paths are taken
    from their own location), the library, stages and params linked."""
    root = module_tmp("repo") / "repo"
    shutil.copytree(BENCH, root / "benchmarks", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("staged_fer", "stages", "params.yaml"):
        (root / name).symlink_to(ROOT / name)
    assert not (root.parent / "shared").exists()
    return root


@pytest.mark.parametrize("name", sorted(WITHOUT_SHARED))
def test_benchmark_without_shared_data_falls_back_or_says_what_it_skipped(name, without_shared):
    proc = run(without_shared / "benchmarks" / name, "--quick", cwd=without_shared)
    assert proc.returncode == 0, failure(name, proc)
    assert re.search(WITHOUT_SHARED[name], proc.stdout), failure(name, proc)


@pytest.mark.parametrize("args,message", [
    (["--no-such-flag"], "unrecognized arguments: --no-such-flag"),
    (["--rounds", "0"], "argument --rounds: expected at least 1, got 0"),
    (["--rounds", "x"], "argument --rounds: expected a number, got 'x'"),
    (["--root", "/no/such/folder"], "/no/such/folder: no such folder"),
])
def test_a_bad_argument_prints_the_usage_not_a_traceback(args, message):
    proc = run(BENCH / "bench_align.py", *args)
    assert proc.returncode == 2 and proc.stderr.startswith("usage: bench_align.py"), proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize("name", [n for n in benchmarks() if n.endswith(".py")])
def test_every_benchmark_refuses_an_unknown_flag_with_its_usage(name):
    proc = run(BENCH / name, "--no-such-flag")
    assert proc.returncode == 2 and "usage:" in proc.stderr and "Traceback" not in proc.stderr, failure(name, proc)


def test_the_device_check_without_a_venv_names_the_command_that_sets_it_up(tmp_path):
    (tmp_path / "benchmarks").mkdir()
    shutil.copy(BENCH / "gpu_check.sh", tmp_path / "benchmarks")
    proc = run(tmp_path / "benchmarks" / "gpu_check.sh", cwd=tmp_path)
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.strip() == f"benchmarks/gpu_check.sh: no .venv in {tmp_path}; set it up first with `make setup`"
