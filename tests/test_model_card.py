"""The model card: built from scored sets and the checkpoints' run facts, without a model."""
from __future__ import annotations

import re

import numpy as np
import pytest

from model_samples import PARAMS, align_record_dlib
from staged_fer.params import parse
from staged_fer.evaluation.metrics import EvaluateConfig, classification_metrics, cost_matrix
from staged_fer.evaluation.model_card import write_model_card
from staged_fer.evaluation.scoring import evaluation_sets, score
from staged_fer.models.checkpoint import Checkpoint
from tests.test_evaluation import fake_predict, make_data

CFG = parse(EvaluateConfig, {"bootstrap": 50, "batch_size": 8, "device": "cpu",
                             "cost": {"similar": [["Angry", "Disgust"]], "similar_cost": 0.5}}, "evaluate")


def runs(synthetic: bool) -> dict:
    """The two checkpoints' records of their runs, without weights (as ``TrainedModel.run`` holds them)."""
    phase1 = Checkpoint(model="alexnet", state_dict={}, scheme="fer28", synthetic=synthetic, epoch=3,
                        best_val_acc=0.41, history=[],
                        params={**PARAMS, "phase1": {**PARAMS["phase2"], "data": "fer28", "epochs": 8}}, align=None)
    final = Checkpoint(model="alexnet", state_dict={}, scheme="target", synthetic=synthetic, epoch=2,
                       best_val_acc=0.37, history=[], params=PARAMS, align=align_record_dlib())
    return {"phase1": phase1, "final": final}


def card(tmp_path, synthetic: bool) -> tuple[str, list]:
    fer, target = make_data(n_fer=40, n_val=21, synthetic=synthetic)
    scored = score(evaluation_sets({"fer": fer, "target": target}, {"fer": "fer.npz", "target": "target.npz"}), fake_predict, lambda role: False)
    path = tmp_path / "reports" / "model_card.md"
    write_model_card(path, scored, CFG, 0, runs(synthetic), tmp_path / "reports" / "eval",
                     checkpoints={"phase1": "models/phase1.pt", "final": "models/phase2.pt"})
    return path.read_text(), scored


@pytest.mark.parametrize("synthetic", [True, False])
def test_card_holds_data_training_metrics_use_and_limits(tmp_path, synthetic):
    text, scored = card(tmp_path, synthetic)
    assert text.startswith("# Model card: alexnet, fer28 -> target")
    assert ("**Synthetic data.**" in text) is synthetic
    for heading in ("## Model", "## Data and scheme", "## Training", "## Evaluation", "## Intended use",
                    "## Known limits"):
        assert heading in text
    assert "FER-2013 Training (28,709 faces in the full set), validated on PublicTest" in text
    assert "the target set's Train (SFEW 2.0 by default), validated on its Val" in text
    assert "dlib 68-point landmarks, rejected below a fit of 0.3" in text
    assert "- Files: `models/phase2.pt` (this model) and `models/phase1.pt`; " in text   # as evaluate got them
    # Training params of both phases, with the kept epoch and best validation accuracy.
    assert "| phase1 (fer28) | 8 | 16 | 0.005 |" in text and "| 3 | 41.0 |" in text
    assert "| phase2 (target) | 1 | 16 | 0.005 |" in text and "| 2 | 37.0 |" in text
    # Every scored set with the numbers the metrics file gets (same function, bootstrap, seed).
    for s in scored:
        m = classification_metrics(s.set.labels, s.proba, cost=cost_matrix(CFG.cost), bootstrap=50, seed=0)
        row = next(line for line in text.splitlines() if line.startswith(f"| {s.set.title}"))
        assert (f"| {m['n']} | {100 * m['accuracy']:.1f} [{100 * m['accuracy_ci95_low']:.1f}, "
                f"{100 * m['accuracy_ci95_high']:.1f}] |") in row
        assert f"(eval/confusion_{s.set.key}.png)" in text
    assert "Demographic skew" in text and "not measured" in text and "Seven posed categories" in text
    assert re.search(r"Not for decisions about individuals", text)


def test_card_links_resolve_relative_to_the_card(tmp_path):
    text, scored = card(tmp_path, True)
    for link in re.findall(r"\]\(([^)]+\.png)\)", text):
        assert (tmp_path / "reports" / link).parent == tmp_path / "reports" / "eval"
    assert len(re.findall(r"\]\(([^)]+\.png)\)", text)) == len(scored)


def test_card_names_the_gpus_each_step_was_given():
    from staged_fer.evaluation.model_card import gpu_line
    slot = {"ids": ["1"], "names": None, "cuda": False, "taken_at": 1.0}
    gpu = {"ids": ["2", "3"], "names": ["NVIDIA H100", "NVIDIA H100"], "cuda": True, "taken_at": 2.0}
    assert gpu_line({"train_phase1": gpu, "train_phase2": slot, "evaluate": None}) == (
        "GPUs (ids as in CUDA_VISIBLE_DEVICES): train_phase1: GPU 2,3 (NVIDIA H100, NVIDIA H100); "
        "train_phase2: slot 1 (no CUDA: ran on the CPU); evaluate: none taken.")
    assert gpu_line(None) == "GPUs (ids as in CUDA_VISIBLE_DEVICES): not recorded."
