"""The training loop through the stage entry point, with a tiny network in place of AlexNet:
determinism, exact resume, stale resume state, kept epoch, schedule, class weights."""
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import yaml
from torch import nn

import staged_fer.models as models
from staged_fer.data.splits import Bank, Split, save_split
from staged_fer.models.checkpoint import Checkpoint
from staged_fer.training import loop, resume
from staged_fer.training.loop import class_weights
from staged_fer.training.phase import run
from tests.params_baseline import baseline_params

ROOT = Path(__file__).resolve().parents[1]


# Tiny convolutions spend more time in thread hand-offs than in arithmetic.
pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_net(num_classes=7):
    return nn.Sequential(nn.Conv2d(3, 6, 3, stride=2, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2),
                         nn.Flatten(), nn.Dropout(0.3), nn.Linear(24, num_classes))


@pytest.fixture
def tiny_models(monkeypatch):
    """build_model/input_spec stand-ins: a 1k-parameter net at 16 px (ImageNet weights = seeded init)."""
    def build_model(name, cfg, num_classes=7, pretrained=True):
        return tiny_net(num_classes)

    def input_spec(name, cfg):
        return SimpleNamespace(size=16, mean=(124.0, 116.0, 104.0), std=(58.0, 57.0, 57.0), channel_order="RGB")

    monkeypatch.setattr(models, "build_model", build_model)
    monkeypatch.setattr(models, "input_spec", input_spec)


def faces(n, side, seed):
    """Faces whose label is the row of a bright band: learnable in a few epochs."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 7, n)
    images = rng.integers(0, 60, (n, side, side)).astype(np.uint8)
    for i, label in enumerate(labels):
        row = side * label // 7
        images[i, row:row + max(1, side // 7)] = 230
    return images, labels.astype(np.int64)


def write_project(tmp: Path, **overrides) -> Path:
    s1 = Split("fer28", (Bank("FER Training", *faces(96, 12, 0)),), (Bank("FER PublicTest", *faces(40, 12, 1)),), True)
    s2 = Split("target", (Bank("Target Train", *faces(40, 20, 2)),), (Bank("Target Val", *faces(20, 20, 3)),), True)
    save_split(tmp / "phase1", s1, {})
    save_split(tmp / "phase2", s2, {})
    params = baseline_params()
    for phase in ("phase1", "phase2"):
        params[phase].update(epochs=3, batch_size=16, lr=0.05, lr_step=2)
    params["phase1"]["data"] = "fer28"
    params["input"]["resize"] = 20
    params["runtime"]["device"] = "cpu"
    for key, value in overrides.items():
        section, _, name = key.partition("__")
        if name:
            params[section][name] = value
        else:
            params[section] = value
    (tmp / "params.yaml").write_text(yaml.safe_dump(params))
    return tmp / "params.yaml"


def train1(tmp: Path, out="phase1.pt", live="live1"):
    run("phase1", split_path=tmp / "phase1", out_path=tmp / out, live_dir=tmp / live,
        params_path=tmp / "params.yaml", init_path=None, script="unused", argv=[], progress=False)
    return Checkpoint.read(tmp / out)


def live_files(live: Path) -> dict[str, str]:
    return {str(p.relative_to(live)): p.read_text() for p in sorted(live.rglob("*")) if p.is_file()}


def assert_same_weights(a, b):
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_same_seed_gives_identical_metrics_and_weights(tmp_path, tiny_models):
    first, second = tmp_path / "a", tmp_path / "b"
    for d in (first, second):
        d.mkdir()
        write_project(d)
    a, b = train1(first), train1(second)
    assert a.history == b.history and len(a.history) == 3
    assert live_files(first / "live1") == live_files(second / "live1")
    assert_same_weights(a.state_dict, b.state_dict)
    # A different seed is a different run (guards against a test that cannot fail).
    third = tmp_path / "c"
    third.mkdir()
    write_project(third, seed=1)
    assert train1(third).history != a.history


class Killed(Exception):
    pass


def test_killed_run_resumes_to_the_weights_of_an_uninterrupted_run(tmp_path, tiny_models, monkeypatch, capsys):
    whole, broken = tmp_path / "whole", tmp_path / "broken"
    for d in (whole, broken):
        d.mkdir()
        write_project(d)
    reference = train1(whole)

    saves = []
    real_save = resume.ResumeStore.save

    def save_then_die(self, state, best):
        real_save(self, state, best)
        saves.append(state["epoch"])
        if state["epoch"] == 2:
            raise Killed()

    monkeypatch.setattr(resume.ResumeStore, "save", save_then_die)
    with pytest.raises(Killed):
        train1(broken)
    assert not (broken / "phase1.pt").exists()
    state_dirs = list((broken / ".resume" / "train_phase1").iterdir())
    assert len(state_dirs) == 1 and (state_dirs[0] / "state.pt").is_file()

    monkeypatch.setattr(resume.ResumeStore, "save", real_save)
    capsys.readouterr()
    resumed = train1(broken)
    assert "resuming after epoch 2" in capsys.readouterr().err
    assert_same_weights(resumed.state_dict, reference.state_dict)
    assert resumed.history == reference.history and resumed.epoch == reference.epoch
    assert live_files(broken / "live1") == live_files(whole / "live1")
    assert not (broken / ".resume" / "train_phase1").exists()


def test_state_of_other_params_is_never_used(tmp_path, tiny_models, monkeypatch, capsys):
    write_project(tmp_path)

    def die(self, state, best):
        raise Killed()

    real_save = resume.ResumeStore.save
    monkeypatch.setattr(resume.ResumeStore, "save", lambda self, s, b: (real_save(self, s, b), die(self, s, b)))
    with pytest.raises(Killed):
        train1(tmp_path)
    old = list((tmp_path / ".resume" / "train_phase1").iterdir())
    assert len(old) == 1
    monkeypatch.setattr(resume.ResumeStore, "save", real_save)
    write_project(tmp_path, phase1__lr=0.02)
    capsys.readouterr()
    ckpt = train1(tmp_path)
    assert "resuming" not in capsys.readouterr().err
    assert len(ckpt.history) == 3 and not old[0].exists()


def test_keeps_the_best_epoch_earlier_on_ties_and_follows_the_schedule(tmp_path, tiny_models, monkeypatch):
    write_project(tmp_path, phase1__epochs=4)
    scripted = iter([(1.0, 0.5), (0.9, 0.7), (0.8, 0.7), (0.9, 0.6)])
    real_evaluate = loop.Trainer.evaluate
    monkeypatch.setattr(loop.Trainer, "evaluate", lambda self: (real_evaluate(self), next(scripted))[1])
    best = train1(tmp_path)
    assert best.epoch == 2 and best.best_val_acc == 0.7
    assert [h["lr"] for h in best.history] == pytest.approx([0.05, 0.05, 0.005, 0.005])
    assert [h["val_acc"] for h in best.history] == [0.5, 0.7, 0.7, 0.6]
    metrics = json.loads((tmp_path / "live1" / "metrics.json").read_text())
    assert metrics == {"kept_epoch": 2, "best_val_acc": 0.7}

    # The kept weights are those after epoch 2: a 2-epoch `keep: last` run ends there.
    monkeypatch.setattr(loop.Trainer, "evaluate", real_evaluate)
    write_project(tmp_path, phase1__epochs=2, phase1__keep="last")
    last = train1(tmp_path, out="last.pt", live="live_last")
    assert last.epoch == 2
    assert_same_weights(last.state_dict, best.state_dict)


def test_training_learns_the_synthetic_faces(tmp_path, tiny_models):
    write_project(tmp_path, phase1__epochs=12, phase1__lr_step=100, phase1__lr=0.2)
    ckpt = train1(tmp_path)
    assert ckpt.best_val_acc > 0.5, ckpt.history


def test_class_weights_balance_the_classes():
    labels = torch.tensor([0] * 6 + [1] * 2 + [3] * 4)
    w = class_weights(labels)
    assert w.shape == (7,)
    assert w[2] == 0 and w[0] * 6 == pytest.approx(w[1] * 2) == pytest.approx(w[3] * 4)
    assert (w[labels]).mean() == pytest.approx(1.0)


def test_one_channel_and_three_channel_inputs_train_the_same_network(tmp_path):
    """The folded one-channel conv1 is the replicated input's conv1, through training."""
    from staged_fer.params import load_params, section
    from staged_fer.data.splits import load_split
    from staged_fer.inputs.input_params import InputConfig
    from staged_fer.training.phase_params import PhaseConfig, RuntimeConfig
    from staged_fer.training.loop import Trainer

    params = load_params(write_project(tmp_path))
    spec = SimpleNamespace(size=16, mean=(124.0, 116.0, 104.0), std=(58.0, 57.0, 57.0))
    results = {}
    for channels in ("gray", "rgb"):
        torch.manual_seed(0)
        results[channels] = Trainer(
            tiny_net(), spec, load_split(tmp_path / "phase1"), section(params, "phase1", PhaseConfig),
            section(params, "input", InputConfig), section(params, "runtime", RuntimeConfig), 0,
            torch.device("cpu"), channels=channels, progress=False).fit()
    gray, rgb = results["gray"], results["rgb"]
    assert list(gray.state_dict) == list(rgb.state_dict)
    for key in rgb.state_dict:
        torch.testing.assert_close(gray.state_dict[key], rgb.state_dict[key], atol=1e-4, rtol=1e-4)
    for a, b in zip(gray.history, rgb.history):
        assert a["train_loss"] == pytest.approx(b["train_loss"], abs=1e-4)


def test_deterministic_param_turns_on_deterministic_algorithms(tmp_path, tiny_models):
    write_project(tmp_path, phase1__epochs=1, runtime__deterministic=True)
    try:
        train1(tmp_path)
        assert torch.are_deterministic_algorithms_enabled()
        write_project(tmp_path, phase1__epochs=1, runtime__deterministic=False)
        train1(tmp_path)
        assert not torch.are_deterministic_algorithms_enabled()
    finally:
        torch.use_deterministic_algorithms(False)
