"""ResNet-18 through the model registry: weights, input, grid and report, and a DVC experiment."""
from __future__ import annotations

import json
import urllib.error

import pytest
import torch
from torch import nn
from torchvision.models import ResNet18_Weights, resnet18

from staged_fer.params import load_params, parse
from staged_fer.errors import PipelineError
from staged_fer.evaluation import experiments, grid, report
from staged_fer.models import MODEL_NAMES, PAPER_MODELS, ModelsConfig, build_model, count_parameters, input_spec
from tests.dvc_project import TINY_PARAMS, DvcProject

PARAMS = load_params("params.yaml")
FILE = "resnet18-f37072fd.pth"


def config(**resnet18) -> ModelsConfig:
    raw = {name: dict(values) for name, values in PARAMS["models"].items()}
    raw["resnet18"].update(resnet18)
    return parse(ModelsConfig, raw, "models")


@pytest.fixture
def no_network(monkeypatch):
    def refuse(url, *args, **kwargs):
        raise urllib.error.URLError(f"no network for {url}")
    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)


def test_registered_beyond_the_paper():
    assert "resnet18" in MODEL_NAMES and "resnet18" not in PAPER_MODELS
    assert PARAMS["models"]["resnet18"] == {"weights": "imagenet", "input_size": 224}


def test_parameters_and_head():
    with torch.device("meta"):
        model = build_model("resnet18", config(weights="none"))
    # torchvision's 11,689,512 with the 512x1000 fc replaced by 512x7.
    assert ResNet18_Weights.IMAGENET1K_V1.meta["num_params"] == 11_689_512
    assert count_parameters(model) == 11_689_512 - 513_000 + 3_591
    assert isinstance(model.fc, nn.Linear) and model.fc.out_features == 7


def test_imagenet_weights_from_torch_cache(torch_home, no_network):
    torch.manual_seed(1)
    stored = resnet18().state_dict()
    torch_home.mkdir(parents=True)
    torch.save(stored, torch_home / FILE)
    model = build_model("resnet18", config())
    for name, value in model.state_dict().items():
        if name.startswith("fc."):
            assert value.shape[0] == 7
        else:
            assert torch.equal(value, stored[name]), name


def test_offline_names_file_folder_and_the_way_out(torch_home, no_network):
    with pytest.raises(PipelineError) as err:
        build_model("resnet18", config())
    assert f"place {FILE} in {torch_home}" in str(err.value)
    assert "models.resnet18.weights: none" in str(err.value)


def test_input_is_torchvisions_preprocessing():
    spec = input_spec("resnet18", config())
    transform = ResNet18_Weights.IMAGENET1K_V1.transforms()
    assert spec.size == transform.crop_size[0] == 224 and transform.resize_size[0] == PARAMS["input"]["resize"]
    pixels = torch.randint(0, 256, (1, 3, 4, 4), dtype=torch.uint8)
    expected = transform.__class__(crop_size=4, resize_size=4)(pixels)  # ToDtype + Normalize on a 4x4 image
    torch.testing.assert_close(spec.normalize(pixels), expected, rtol=1e-5, atol=1e-5)


def test_grid_adds_it_on_request_only():
    assert len(grid.commands()) == 12 and not any("model=resnet18" in " ".join(c) for c in grid.commands())
    cmds = grid.commands(models=["resnet18"], recipes=["fer28-to-target"])
    assert cmds == [["dvc", "exp", "run", "--queue", "--name", "resnet18-fer28-to-target", "-S", "model=resnet18",
                     "-S", "phase1.data=fer28", "-S", "phase2.data=target"]]


def test_report_marks_it_beyond_the_paper():
    exp = experiments.Experiment("resnet18-fer28", "r" * 40, "resnet18", grid.RECIPE_OF["fer28"],
                            {"target_val": None, "synthetic": False})
    row = report.table_rows([exp])[0]
    assert row[1] == "ResNet-18" and row[report.TABLE_HEADER.index("paper val / test %")] == "beyond the paper"


@pytest.mark.slow
def test_dvc_experiment_with_resnet18(tmp_path):
    """`dvc exp run -S model=resnet18` on the tiny synthetic configuration, through the real CLI."""
    project = DvcProject.copy_of_repo(tmp_path, {**TINY_PARAMS, "models.resnet18.weights": "none",
                                                 "models.resnet18.input_size": 96})
    project.dvc("exp", "run", "-n", "resnet", "-S", "model=resnet18")
    shown = json.loads(project.dvc("exp", "show", "--json").stdout)
    run = next(r for c in shown for e in c.get("experiments") or [] for r in e["revs"] if r["name"] == "resnet")
    assert run["data"]["params"]["params.yaml"]["data"]["model"] == "resnet18"
    assert 0 <= run["data"]["metrics"]["metrics/eval.json"]["data"]["target_val"]["accuracy"] <= 1
    # The model evaluate scored, as its checkpoint records it (the run's outputs are in the workspace).
    assert json.loads((project.path / "reports" / "eval" / "scores.json").read_text())["model"] == "resnet18"
