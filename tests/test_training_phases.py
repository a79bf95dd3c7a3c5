"""The stage scripts end to end: the real AlexNet at a small size, the `none` schemes, errors."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from staged_fer.cli import run_stage
from staged_fer.params import load_params, section
from staged_fer.data.splits import Bank, Split, save_split
from staged_fer.inputs.input_params import InputConfig
from staged_fer.models import MODEL_NAMES, ModelsConfig, build_model
from staged_fer.models.checkpoint import Checkpoint
from staged_fer.models.trained import TrainedModel
from tests.params_baseline import baseline_params

ROOT = Path(__file__).resolve().parents[1]
STAGES = ROOT / "stages"
sys.path.insert(0, str(STAGES))
import train  # noqa: E402


# Tiny convolutions spend more time in thread hand-offs than in arithmetic.
pytestmark = pytest.mark.usefixtures("one_thread")


def faces(n, side, seed):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, side, side), dtype=np.uint8), rng.integers(0, 7, n).astype(np.int64)


def project(tmp: Path, phase1="fer28", phase2="target", model="alexnet", **train) -> Path:
    empty = Split("none", (), (), False)
    s1 = Split("fer28", (Bank("FER Training", *faces(8, 48, 0)),), (Bank("FER PublicTest", *faces(4, 48, 1)),), True)
    s2 = Split("target", (Bank("Target Train", *faces(8, 256, 2)),), (Bank("Target Val", *faces(4, 256, 3)),), True)
    save_split(tmp / "phase1", s1 if phase1 != "none" else empty, {})
    save_split(tmp / "phase2", s2 if phase2 != "none" else empty, {})
    params = baseline_params()
    params["model"] = model
    params["models"]["alexnet"].update(weights="none", input_size=64)
    params["models"]["vgg_m"].update(weights="none", input_size=64)
    params["input"]["resize"] = 72
    params["phase1"].update(data=phase1, epochs=1, batch_size=8)
    params["phase2"].update(data=phase2, epochs=1, batch_size=8)
    params["runtime"].update({"device": "cpu", **train})
    (tmp / "params.yaml").write_text(yaml.safe_dump(params))
    return tmp / "params.yaml"


def args1(tmp):
    return ["phase1", "--params", str(tmp / "params.yaml"), "--split", str(tmp / "phase1"),
            "--out", str(tmp / "models" / "phase1.pt"), "--live", str(tmp / "live" / "phase1")]


def args2(tmp):
    return ["phase2", "--params", str(tmp / "params.yaml"), "--split", str(tmp / "phase2"),
            "--init", str(tmp / "models" / "phase1.pt"), "--out", str(tmp / "models" / "phase2.pt"),
            "--live", str(tmp / "live" / "phase2")]


def test_both_stages_train_alexnet_and_write_the_contract(tmp_path):
    project(tmp_path)
    # Phase 1 as DVC runs it (a file in a fresh process), phase 2 in this process.
    proc = subprocess.run([sys.executable, str(STAGES / "train.py"), *args1(tmp_path)],
                          capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert run_stage(train.main, args2(tmp_path)) == 0
    s1 = torch.load(tmp_path / "models" / "phase1.pt", weights_only=True)
    s2 = torch.load(tmp_path / "models" / "phase2.pt", weights_only=True)
    for ckpt, scheme in ((s1, "fer28"), (s2, "target")):
        assert ckpt["model"] == "alexnet" and ckpt["scheme"] == scheme and ckpt["synthetic"] is True
        assert ckpt["epoch"] == 1 and len(ckpt["history"]) == 1
        assert set(ckpt["params"]) == {"seed", "model", "models", "input", "runtime", "phase1" if scheme == "fer28" else "phase2"}
        assert ckpt["state_dict"]["features.0.weight"].shape == (64, 3, 11, 11)
    assert not torch.equal(s1["state_dict"]["classifier.6.weight"], s2["state_dict"]["classifier.6.weight"])
    for phase in ("phase1", "phase2"):
        live = tmp_path / "live" / phase
        metrics = json.loads((live / "metrics.json").read_text())
        assert set(metrics) == {"kept_epoch", "best_val_acc"} and 0 <= metrics["best_val_acc"] <= 1
        assert sorted(p.name for p in (live / "plots" / "metrics").iterdir()) == \
            ["lr.tsv", "train_acc.tsv", "train_loss.tsv", "val_acc.tsv", "val_loss.tsv"]
        assert not (live / "dvc.yaml").exists()
    assert not (tmp_path / ".resume" / "train_phase1").exists()
    # What evaluation does with it.
    params = load_params(tmp_path / "params.yaml")
    model = TrainedModel.load(tmp_path / "models" / "phase2.pt", "cpu", section(params, "models", ModelsConfig),
                              section(params, "input", InputConfig))
    probs = model.predict_proba(faces(3, 256, 9)[0])
    assert probs.shape == (3, 7)


def test_none_schemes_pass_the_weights_through(tmp_path):
    project(tmp_path, phase1="none", phase2="none")
    assert run_stage(train.main, args1(tmp_path)) == 0
    assert run_stage(train.main, args2(tmp_path)) == 0
    s1 = Checkpoint.read(tmp_path / "models" / "phase1.pt")
    s2 = Checkpoint.read(tmp_path / "models" / "phase2.pt")
    assert s1.epoch == 0 and s1.history == [] and s1.scheme == "none" and s1.best_val_acc is None
    # The ImageNet initialisation (here `weights: none`: the seeded random init) with its fresh head.
    torch.manual_seed(load_params(tmp_path / "params.yaml")["seed"])
    fresh = build_model("alexnet", section(load_params(tmp_path / "params.yaml"), "models", ModelsConfig))
    for key, value in fresh.state_dict().items():
        assert torch.equal(s1.state_dict[key], value), key
        assert torch.equal(s2.state_dict[key], value), key
    assert s2.epoch == 0 and s2.scheme == "none" and "phase2" in s2.params
    metrics = json.loads((tmp_path / "live" / "phase2" / "metrics.json").read_text())
    assert metrics == {"kept_epoch": 0}
    assert (tmp_path / "live" / "phase2" / "plots" / "metrics").is_dir()


def test_unknown_model_is_one_line_naming_the_key(tmp_path, capsys):
    project(tmp_path, model="resnet")
    assert run_stage(train.main, args1(tmp_path)) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "`model` is 'resnet'" in err
    assert all(repr(name) in err for name in MODEL_NAMES)    # the registered ones are listed
    assert not (tmp_path / "models").exists()


def test_split_of_another_scheme_is_refused(tmp_path, capsys):
    project(tmp_path)
    params = yaml.safe_load((tmp_path / "params.yaml").read_text())
    params["phase1"]["data"] = "fer32"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    assert run_stage(train.main, args1(tmp_path)) == 1
    assert "built for scheme 'fer28' but params.yaml `phase1.data` is 'fer32'" in capsys.readouterr().err


def test_phase2_refuses_a_phase1_model_of_another_network(tmp_path, capsys):
    project(tmp_path, phase1="none")
    assert run_stage(train.main, args1(tmp_path)) == 0
    params = yaml.safe_load((tmp_path / "params.yaml").read_text())
    params["model"] = "vgg_m"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    assert run_stage(train.main, args2(tmp_path)) == 1
    assert "holds model 'alexnet' but params.yaml `model` is 'vgg_m'" in capsys.readouterr().err
    assert not (tmp_path / "models" / "phase2.pt").exists()


def test_init_is_required_for_phase2_and_refused_for_phase1(tmp_path, capsys):
    project(tmp_path)
    phase2 = args2(tmp_path)
    at = phase2.index("--init")
    refused = {"phase2 starts from the phase-1 checkpoint: --init is required": phase2[:at] + phase2[at + 2:],
               "phase1 starts from ImageNet: --init is for phase2 only": args1(tmp_path) + phase2[at:at + 2]}
    for message, argv in refused.items():
        with pytest.raises(SystemExit) as exit_:
            train.main(argv)
        assert exit_.value.code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "models").exists()


def test_bad_train_params_name_the_key(tmp_path, capsys):
    project(tmp_path, device="tpu")
    assert run_stage(train.main, args1(tmp_path)) == 1
    assert "`runtime.device`" in capsys.readouterr().err


def test_stage_killed_with_sigkill_resumes_to_the_uninterrupted_weights(tmp_path):
    """The real script, AlexNet at 64 px, 3 epochs: SIGKILL once an epoch's state is on disk."""
    import signal
    import time

    whole, killed = tmp_path / "whole", tmp_path / "killed"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for d in (whole, killed):
        d.mkdir()
        project(d)
        params = yaml.safe_load((d / "params.yaml").read_text())
        params["phase1"].update(epochs=3, batch_size=4)
        (d / "params.yaml").write_text(yaml.safe_dump(params))
    cmd = [sys.executable, str(STAGES / "train.py")]
    assert subprocess.run(cmd + args1(whole), env=env, capture_output=True, timeout=900).returncode == 0

    proc = subprocess.Popen(cmd + args1(killed), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 900
    while not list((killed / ".resume").glob("train_phase1/*/state.pt")):
        assert proc.poll() is None and time.time() < deadline, "the run ended before it could be killed"
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (killed / "models" / "phase1.pt").exists()
    rerun = subprocess.run(cmd + args1(killed), env=env, capture_output=True, text=True, timeout=900)
    assert rerun.returncode == 0 and "resuming after epoch" in rerun.stderr, rerun.stderr[-2000:]
    a = Checkpoint.read(whole / "models" / "phase1.pt")
    b = Checkpoint.read(killed / "models" / "phase1.pt")
    assert a.history == b.history and a.epoch == b.epoch
    for key, value in a.state_dict.items():
        assert torch.equal(b.state_dict[key], value), key
    assert not (killed / ".resume").exists()


def test_select_train_split_picks_the_epoch_on_held_out_training_faces(tmp_path):
    """phase2.select: train_split holds out a stratified share of Target Train for the epoch
    choice; the checkpoint names the sets it chose on, which evaluation reports."""
    params = project(tmp_path, phase1="none")
    raw = yaml.safe_load(params.read_text())
    raw["phase2"].update(select="train_split", select_share=0.25, epochs=2)
    params.write_text(yaml.safe_dump(raw))
    assert run_stage(train.main, args1(tmp_path)) == 0
    assert run_stage(train.main, args2(tmp_path)) == 0
    ckpt = torch.load(tmp_path / "models" / "phase2.pt", weights_only=True)
    assert ckpt["selected_on"] == ["Target Train (held out for selection)"]
    assert ckpt["best_val_acc"] == max(h["val_acc"] for h in ckpt["history"])
    s1 = torch.load(tmp_path / "models" / "phase1.pt", weights_only=True)
    assert s1["selected_on"] is None   # scheme none: nothing was chosen


def test_hold_out_is_stratified_seeded_and_disjoint():
    from staged_fer.data.splits import hold_out
    images = np.arange(40, dtype=np.uint8).reshape(40, 1, 1).repeat(2, 1).repeat(2, 2)
    labels = np.repeat([0, 1, 2, 3], [20, 10, 8, 2]).astype(np.int64)
    split = Split("target", (Bank("Target Train", images, labels),), (Bank("Target Val", images[:3], labels[:3]),), False)
    a, b = hold_out(split, 0.2, 7), hold_out(split, 0.2, 7)
    (train,), (held,) = a.train, a.val
    assert np.bincount(held.labels).tolist() == [4, 2, 2, 1]            # 20% per class, at least one
    assert sorted(train.images[:, 0, 0].tolist() + held.images[:, 0, 0].tolist()) == list(range(40))
    assert np.array_equal(held.images, b.val[0].images)                # seeded
    assert not np.array_equal(held.images, hold_out(split, 0.2, 8).val[0].images)
