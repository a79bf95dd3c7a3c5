"""stages/evaluate.py end to end, on checkpoints in the contract format and tiny npz inputs."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
import yaml

from staged_fer.cli import run_stage
from staged_fer.params import section
from staged_fer.io import save_npz
from staged_fer.models import ModelsConfig, build_model
from tests.params_baseline import baseline_params
from tests.dvc_project import ROOT
from tests.test_evaluation import make_data

SIZE = 64


@pytest.fixture(scope="module")
def workspace(module_tmp):
    path = module_tmp("evaluate")
    params = baseline_params()
    params["models"]["alexnet"].update(weights="none", input_size=SIZE)
    params["input"]["resize"] = 72
    params["evaluate"].update(bootstrap=50, device="cpu", batch_size=7)
    (path / "params.yaml").write_text(yaml.safe_dump(params))
    fer, target = make_data(n_fer=24, n_val=10, test_labelled=True)
    save_npz(path / "fer.npz", **fer)
    save_npz(path / "target.npz", **target)
    torch.manual_seed(0)
    models = section(params, "models", ModelsConfig)
    for name, scheme in (("phase1", "fer28"), ("phase2", "target")):
        model = build_model("alexnet", models, num_classes=7, pretrained=False)
        torch.save({"model": "alexnet", "state_dict": model.state_dict(), "params": params, "epoch": 1,
                    "best_val_acc": 0.2, "history": [], "synthetic": True, "scheme": scheme}, path / f"{name}.pt")
    return path


def args(path, **override):
    a = {"--fer": path / "fer.npz", "--target": path / "target.npz", "--phase1": path / "phase1.pt",
         "--phase2": path / "phase2.pt", "--metrics": path / "metrics" / "eval.json",
         "--plots": path / "plots" / "confusion", "--reports": path / "reports" / "eval",
         "--params": path / "params.yaml", **override}
    return [str(x) for kv in a.items() for x in kv]


def test_stage_scores_every_labelled_set(workspace):
    from stages.evaluate import main
    assert run_stage(main, args(workspace)) == 0
    metrics = json.loads((workspace / "metrics" / "eval.json").read_text())
    assert metrics["synthetic"] is True
    scores = json.loads((workspace / "reports" / "eval" / "scores.json").read_text())
    assert scores["model"] == "alexnet" and scores["schemes"] == "fer28 -> target"
    for key in ("fer_public_test", "fer_private_test", "target_val", "target_val_phase1", "target_test"):
        assert 0 <= metrics[key]["accuracy"] <= 1
        assert (workspace / "plots" / "confusion" / f"{key}.json").is_file()
        assert (workspace / "reports" / "eval" / "predictions" / f"{key}.csv").is_file()
    # two independently initialised models disagree somewhere on Target Val
    rows = [json.loads((workspace / "plots" / "confusion" / f"{k}.json").read_text())
            for k in ("target_val", "target_val_phase1")]
    assert rows[0] != rows[1]


def test_checkpoint_of_another_model_is_refused(workspace, capsys):
    from stages.evaluate import main
    params = yaml.safe_load((workspace / "params.yaml").read_text())
    params["model"] = "vgg_m"
    (workspace / "other.yaml").write_text(yaml.safe_dump(params))
    assert run_stage(main, args(workspace, **{"--params": workspace / "other.yaml",
                                              "--metrics": workspace / "m2.json"})) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "phase1.pt: checkpoint holds model 'alexnet'" in err
    assert not (workspace / "m2.json").exists()


def test_missing_input_is_one_line_error(workspace):
    result = subprocess.run([sys.executable, str(ROOT / "stages" / "evaluate.py"),
                             *args(workspace, **{"--fer": workspace / "nope.npz"})],
                            capture_output=True, text=True, cwd=workspace)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [f"error: {workspace / 'nope.npz'}: decoded FER-2013 not found (run `dvc repro`)"]


def test_help():
    out = subprocess.run([sys.executable, str(ROOT / "stages" / "evaluate.py"), "--help"],
                         capture_output=True, text=True, check=True).stdout
    for flag in ("--fer", "--target", "--phase1", "--phase2", "--metrics", "--plots", "--reports", "--params"):
        assert flag in out
