"""Does `make demo` give the same result on every machine? One model's run, 1 and 2 threads x 3 seeds.

The demo's data are built once, as the demo builds them: the stage scripts download_fer,
decode_fer, align_target and build_splits with the committed params.yaml plus the demo's
overrides (staged_fer/demo.py) for --model (AlexNet by default). Then, for every (seed, threads), the
stage scripts train (phase1, then phase2) and evaluate run in a fresh process with
OMP_NUM_THREADS=threads (torch's intra-op threads) and `seed` set to the seed, which drives
the initial weights, batch order, crops, flips and dropout. Thread counts change the order of
floating-point sums, the way another CPU does; seeds stand for everything else a machine can
change. Printed per run: Target Val accuracy of the final and of the phase-1 model, and the
classes the final model predicts on Target Val (its confusion matrix's non-empty columns).
Exits with 1 when the worst final accuracy is below --min-accuracy or a run leaves a class
unpredicted.

    python benchmarks/bench_demo_stability.py [--model alexnet] [--seeds 0 1 2] [--threads 1 2]
        [--jobs 1] [--work DIR] [-S key=value ...] [--quick]

--jobs runs that many trainings at once (results do not depend on it: each run's arithmetic
is fixed by its seed and thread count); --work keeps the data and runs in DIR (the data are
reused when DIR already holds them for the same params). --quick runs one seed, one thread, on
a few dozen faces for one epoch per phase (QUICK), and judges nothing: the accuracy bar is
the full run's.
"""
from __future__ import annotations

import json
import shutil
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import parse, parser, positive_int  # noqa: E402
from staged_fer.demo import overrides  # noqa: E402
from staged_fer.models import PAPER_MODELS  # noqa: E402

# --quick's data and schedule, after the demo's own overrides.
QUICK = ["fer.synthetic.train=210", "fer.synthetic.public_test=70", "fer.synthetic.private_test=70",
         "target.synthetic.train_per_class=4", "target.synthetic.val_per_class=3", "target.synthetic.test=3",
         "phase1.epochs=1", "phase2.epochs=1", "evaluate.bootstrap=50"]
from staged_fer.labels import EMOTIONS  # noqa: E402


def committed_params() -> dict:
    shown = subprocess.run(["git", "show", "HEAD:params.yaml"], cwd=ROOT, capture_output=True, text=True)
    text = shown.stdout if shown.returncode == 0 else (ROOT / "params.yaml").read_text()
    return yaml.safe_load(text)


def apply(params: dict, settings: list[str]) -> dict:
    for setting in settings:
        dotted, value = setting.split("=", 1)
        *parents, last = dotted.split(".")
        node = params
        for key in parents:
            node = node[key]
        if not isinstance(node, dict) or last not in node:
            raise SystemExit(f"-S {setting}: params.yaml has no key {dotted}")
        node[last] = yaml.safe_load(value)
    return params


def stage(script: str, params: Path, log: Path, threads: int | None = None, *args: str) -> float:
    """Run one stage script; returns its CPU seconds (user + system), which, unlike wall time,
    a shared machine's load does not inflate much."""
    env = {**os.environ, "TQDM_DISABLE": "1"}
    if threads is not None:
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    with log.open("a") as fh:
        proc = subprocess.Popen([sys.executable, str(ROOT / "stages" / script), "--params", str(params), *args],
                                env=env, stdout=fh, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{script} failed (exit code {proc.returncode}); see {log}")
    return usage.ru_utime + usage.ru_stime


def build_data(work: Path, params: dict) -> Path:
    data = work / "data"
    data.mkdir(parents=True, exist_ok=True)
    path = data / "params.yaml"
    text = yaml.safe_dump(params, sort_keys=False)
    if (data / "phase2").is_dir() and path.is_file() and path.read_text() == text:
        print(f"data: reusing {data}", flush=True)
        return data
    path.write_text(text)
    log = data / "log.txt"
    started = time.perf_counter()
    d = str(data)
    cpu = stage("download_fer.py", path, log, None, "--out", f"{d}/fer2013.csv", "--meta", f"{d}/fer2013.meta.json")
    cpu += stage("decode_fer.py", path, log, None, "--csv", f"{d}/fer2013.csv", "--meta", f"{d}/fer2013.meta.json",
          "--out", f"{d}/fer2013.npz", "--reports", f"{d}/reports_fer")
    cpu += stage("align_target.py", path, log, None, "--out", f"{d}/target", "--log", f"{d}/target_log.csv",
          "--reports", f"{d}/reports_target", "--metrics", f"{d}/align.json")
    cpu += stage("build_splits.py", path, log, None, "--fer", f"{d}/fer2013.npz", "--target", f"{d}/target",
          "--phase1", f"{d}/phase1", "--phase2", f"{d}/phase2")
    rates = json.loads((data / "reports_target" / "alignment.json").read_text())
    print(f"data: built in {time.perf_counter() - started:.0f} s ({cpu:.0f} CPU s); Viola-Jones detection rate "
          f"{rates['detection_rate']['all']:.1%}, aligned {rates['alignment_rate']['all']:.1%}", flush=True)
    return data


def train_and_score(work: Path, data: Path, params: dict, seed: int, threads: int) -> dict:
    run = work / f"seed{seed}_threads{threads}"
    run.mkdir(parents=True, exist_ok=True)
    path = run / "params.yaml"
    path.write_text(yaml.safe_dump({**params, "seed": seed}, sort_keys=False))
    log = run / "log.txt"
    log.write_text("")
    r, d = str(run), str(data)
    started = time.perf_counter()
    cpu = stage("train.py", path, log, threads, "phase1", "--split", f"{d}/phase1", "--out", f"{r}/phase1.pt",
          "--live", f"{r}/dvclive1")
    cpu += stage("train.py", path, log, threads, "phase2", "--split", f"{d}/phase2", "--init", f"{r}/phase1.pt",
          "--out", f"{r}/phase2.pt", "--live", f"{r}/dvclive2")
    cpu += stage("evaluate.py", path, log, threads, "--fer", f"{d}/fer2013.npz", "--target", f"{d}/target",
          "--phase1", f"{r}/phase1.pt", "--phase2", f"{r}/phase2.pt", "--metrics", f"{r}/eval.json",
          "--plots", f"{r}/confusion", "--reports", f"{r}/reports")
    metrics = json.loads((run / "eval.json").read_text())
    rows = json.loads((run / "confusion" / "target_val.json").read_text())
    predicted = {row["predicted"] for row in rows}
    return {"seed": seed, "threads": threads, "val": metrics["target_val"]["accuracy"],
            "val_phase1": metrics["target_val_phase1"]["accuracy"],
            "fer": metrics["fer_public_test"]["accuracy"],
            "missing": [e for e in EMOTIONS if e not in predicted], "seconds": time.perf_counter() - started,
            "cpu": cpu}


def main() -> int:
    ap = parser(__doc__)
    ap.add_argument("--model", choices=PAPER_MODELS, default="alexnet")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--threads", type=positive_int, nargs="+", default=[1, 2])
    ap.add_argument("--jobs", type=positive_int, default=1)
    ap.add_argument("--work", type=Path, default=None)
    ap.add_argument("--min-accuracy", type=float, default=0.6)
    ap.add_argument("-S", "--set", dest="extra", action="append", default=[], metavar="KEY=VALUE")
    args = parse(ap, {"seeds": [0], "threads": [1]})
    for setting in args.extra:
        if "=" not in setting:
            ap.error(f"-S {setting!r}: expected KEY=VALUE")
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-demo-"))
    code = measure(args, work)   # a stage that fails keeps the folder: its error names a log there
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)
    return code


def measure(args, work: Path) -> int:
    settings = overrides(args.model, (QUICK if args.quick else []) + args.extra)
    params = apply(committed_params(), settings)
    print(f"demo params: {' '.join(settings)}\nwork: {work}; load average "
          f"{' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} cores", flush=True)
    data = build_data(work, params)
    runs = [(s, t) for s in args.seeds for t in args.threads]
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        results = list(pool.map(lambda st: train_and_score(work, data, params, *st), runs))
    print(f"\n{'seed':>4} {'threads':>7}  {'Target Val':>10}  {'phase 1':>7}  {'FER Public':>10}  "
          f"{'classes predicted':>17}  {'wall s':>6}  {'CPU s':>6}")
    for r in results:
        classes = f"{7 - len(r['missing'])}/7" + (f" (no {', '.join(r['missing'])})" if r["missing"] else "")
        print(f"{r['seed']:>4} {r['threads']:>7}  {r['val']:>10.3f}  {r['val_phase1']:>7.3f}  {r['fer']:>10.3f}  "
              f"{classes:>17}  {r['seconds']:>6.0f}  {r['cpu']:>6.0f}")
    worst = min(r["val"] for r in results)
    spread = max(r["val"] for r in results) - worst
    ok = worst >= args.min_accuracy and not any(r["missing"] for r in results)
    verdict = "not judged (--quick)" if args.quick else "PASS" if ok else "FAIL"
    print(f"worst Target Val {worst:.3f} (spread {spread:.3f}); every class predicted in every run: "
          f"{not any(r['missing'] for r in results)} -> {verdict}; load average now "
          f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    return 0 if ok or args.quick else 1


if __name__ == "__main__":
    sys.exit(main())
