"""Metrics, confusion matrices, McNemar and the evaluate outputs, on hand-made arrays."""
from __future__ import annotations

import csv
import json
import numpy as np
import pytest
from scipy import stats
from sklearn import metrics as skm

from staged_fer.params import parse
from staged_fer.data.splits import SOURCES, ScoredPart, Source, target_bank
from staged_fer.errors import PipelineError
from staged_fer.evaluation.confusion import dvc_rows, paper_order, row_percentages
from staged_fer.evaluation.metrics import (CostConfig, EvaluateConfig, classification_metrics,
                                           confusion_matrix, cost_matrix)
from staged_fer.evaluation.scoring import evaluation_sets, score, write_outputs
from staged_fer.evaluation.stats import bootstrap_accuracy_interval, mcnemar
from staged_fer.labels import LABEL_OF, PAPER_ORDER

COST = CostConfig(similar=(("Angry", "Disgust"), ("Fear", "Surprise")), similar_cost=0.5)
CFG = EvaluateConfig(bootstrap=200, batch_size=8, device="cpu", cost=COST)


def one_hot(pred, k=7):
    p = np.full((len(pred), k), 0.01, dtype=np.float32)
    p[np.arange(len(pred)), pred] = 0.94
    return p


@pytest.mark.filterwarnings("ignore:y_pred contains classes not in y_true")
def test_metrics_agree_with_scikit_learn():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 6, 300)          # class 6 never true, sometimes predicted
    pred = np.where(rng.random(300) < 0.5, y, rng.integers(0, 7, 300))
    m = classification_metrics(y, one_hot(pred), cost=cost_matrix(COST), bootstrap=100, seed=0)
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, pred), abs=1e-6)
    assert m["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(y, pred), abs=1e-6)
    assert m["macro_f1"] == pytest.approx(skm.f1_score(y, pred, average="macro", zero_division=0), abs=1e-6)
    p, r, f, s = skm.precision_recall_fscore_support(y, pred, labels=range(7), zero_division=0)
    for k, name in enumerate(["Angry", "Disgust", "Fear", "Happy", "Sad", "Surprise", "Neutral"]):
        assert m["per_class"][name] == pytest.approx(
            {"precision": p[k], "recall": r[k], "f1": f[k], "support": s[k]}, abs=1e-6)


def test_metrics_by_hand():
    angry, disgust, fear, happy = (LABEL_OF[n] for n in ("Angry", "Disgust", "Fear", "Happy"))
    y = np.array([angry, angry, disgust, fear, happy])
    pred = np.array([angry, disgust, angry, happy, happy])
    m = classification_metrics(y, one_hot(pred), cost=cost_matrix(COST), bootstrap=50, seed=0)
    assert m["n"] == 5
    assert m["accuracy"] == pytest.approx(0.4)
    # two Angry<->Disgust confusions at 0.5, one Fear->Happy at 1: mean cost 2/5
    assert m["cost_accuracy"] == pytest.approx(0.6)
    # recalls: Angry 1/2, Disgust 0, Fear 0, Happy 1
    assert m["balanced_accuracy"] == pytest.approx(0.375)
    assert m["per_class"]["Happy"] == {"precision": 0.5, "recall": 1.0, "f1": pytest.approx(2 / 3, abs=1e-6),
                                       "support": 1}


def test_cost_matrix_is_symmetric_in_pairs_and_zero_on_the_diagonal():
    c = cost_matrix(COST)
    assert np.all(np.diag(c) == 0)
    assert c[LABEL_OF["Angry"], LABEL_OF["Disgust"]] == c[LABEL_OF["Disgust"], LABEL_OF["Angry"]] == 0.5
    assert c[LABEL_OF["Happy"], LABEL_OF["Sad"]] == 1


@pytest.mark.parametrize("raw, key", [
    ({"similar": [["Angry", "Disgusted"]], "similar_cost": 0.5}, "Disgusted"),
    ({"similar": [["Angry", "Angry"]], "similar_cost": 0.5}, "itself"),
    ({"similar": [], "similar_cost": 1.5}, "similar_cost"),
])
def test_bad_cost_config_names_the_problem(raw, key):
    with pytest.raises(PipelineError, match=key):
        parse(CostConfig, raw, "evaluate.cost")


def test_bootstrap_interval_is_seeded_and_brackets_the_accuracy():
    correct = np.r_[np.ones(70, bool), np.zeros(30, bool)]
    a = bootstrap_accuracy_interval(correct, resamples=500, seed=3)
    assert a == bootstrap_accuracy_interval(correct, resamples=500, seed=3)
    assert a[0] < 0.7 < a[1]
    # binomial standard error 0.046: the 95% interval spans about +-0.09
    assert 0.12 < a[1] - a[0] < 0.24
    assert bootstrap_accuracy_interval(np.ones(40, bool), resamples=50, seed=0) == (1.0, 1.0)


def test_mcnemar_exact_for_few_discordant_pairs():
    truth = np.zeros(30, int)
    a = np.zeros(30, int)
    b = np.zeros(30, int)
    b[:10] = 1        # 10 samples only A gets right
    a[10:12] = 1      # 2 samples only B gets right
    t = mcnemar(truth, a, b)
    assert (t.only_a, t.only_b, t.method) == (10, 2, "exact")
    # two-sided binomial: 2 * P(X <= 2 | n=12, p=1/2) = 2 * (1 + 12 + 66) / 4096
    assert t.p_value == pytest.approx(158 / 4096)
    assert t.p_value == pytest.approx(stats.binomtest(10, 12, 0.5).pvalue)


def test_mcnemar_chi_square_for_many_discordant_pairs():
    truth = np.zeros(100, int)
    a = np.zeros(100, int)
    b = np.zeros(100, int)
    b[:30] = 1
    a[30:45] = 1
    t = mcnemar(truth, a, b)
    assert t.method == "chi2"
    assert t.statistic == pytest.approx((30 - 15 - 1) ** 2 / 45)
    assert t.p_value == pytest.approx(stats.chi2.sf(196 / 45, df=1))
    assert t.p_value == pytest.approx(0.03689, abs=1e-5)
    assert mcnemar(truth, a, a).p_value == 1.0


def test_confusion_in_paper_order_as_row_percentages():
    y = np.array([LABEL_OF["Fear"]] * 4 + [LABEL_OF["Neutral"]] * 2)
    pred = np.array([LABEL_OF["Fear"], LABEL_OF["Fear"], LABEL_OF["Sad"], LABEL_OF["Neutral"],
                     LABEL_OF["Neutral"], LABEL_OF["Neutral"]])
    pct = row_percentages(paper_order(confusion_matrix(y, pred)))
    assert PAPER_ORDER[0] == "Fear" and PAPER_ORDER[-1] == "Neutral"
    assert pct[0].tolist() == [50.0, 25.0, 0, 0, 0, 0, 25.0]
    assert pct[6].tolist() == [0, 0, 0, 0, 0, 0, 100.0]
    assert pct[1].sum() == 0  # no Sad samples
    assert dvc_rows(y[:1], pred[2:3]) == [{"actual": "Fear", "predicted": "Sad"}]


def test_confusion_rejects_labels_out_of_range():
    with pytest.raises(ValueError, match="label 7 at index 1"):
        confusion_matrix(np.array([0, 7]), np.array([0, 0]))


def make_data(n_fer=20, n_val=14, test_labelled=False, synthetic=True):
    rng = np.random.default_rng(0)
    usage = np.array(["Training", "PublicTest", "PrivateTest", "PublicTest"] * (n_fer // 4))
    fer = {"images": rng.integers(0, 256, (len(usage), 48, 48), dtype=np.uint8),
           "labels": rng.integers(0, 7, len(usage)), "usage": usage,
           "source": np.array("synthetic" if synthetic else "file")}
    split = np.array(["Train"] * 6 + ["Val"] * n_val + ["Test"] * 4)
    labels = rng.integers(0, 7, len(split))
    if not test_labelled:
        labels[split == "Test"] = -1
    target = {"images": rng.integers(0, 256, (len(split), 64, 64), dtype=np.uint8), "labels": labels,
              "split": split, "paths": np.array([f"{s}/img{i}.png" for i, s in enumerate(split)]),
              "outcome": np.array(["aligned"] * len(split)), "source": np.array("synthetic" if synthetic else "dir")}
    return fer, target


def fake_predict(role, images):
    # deterministic, image-dependent probabilities; the phase-1 model differs from the final one
    cols = slice(7, 14) if role == "phase1" else slice(0, 7)
    k = np.asarray(images).reshape(len(images), -1)[:, cols].astype(np.float32) + 1
    return (k / k.sum(axis=1, keepdims=True)).astype(np.float32)


def test_evaluation_sets_score_test_only_when_labelled():
    fer, target = make_data()
    keys = [s.key for s in evaluation_sets({"fer": fer, "target": target}, {"fer": "fer.npz", "target": "target.npz"})]
    assert keys == ["fer_public_test", "fer_private_test", "target_val", "target_val_phase1"]
    fer, target = make_data(test_labelled=True)
    sets = evaluation_sets({"fer": fer, "target": target}, {"fer": "fer.npz", "target": "target.npz"})
    assert sets[-1].key == "target_test" and len(sets[-1].labels) == 4
    public = sets[0]
    assert public.ids.tolist() == [str(i) for i in np.flatnonzero(fer["usage"] == "PublicTest")]


def test_a_registered_source_is_scored_with_no_edit_to_evaluation(monkeypatch):
    """Evaluation reads what to score from the source registry: a third source (here RAF-DB-like
    folders `train`/`test`, ids from a `paths` array) is scored once registered."""
    fer, target = make_data()
    subset = np.array(["train"] * 3 + ["test"] * 5)
    raf = {"images": np.zeros((8, 32, 32), np.uint8), "labels": np.array([0, 1, 2, 3, 4, -1, 6, 0]),
           "subset": subset, "paths": np.array([f"{s}/{i}.jpg" for i, s in enumerate(subset)]),
           "source": np.array("dir")}
    monkeypatch.setitem(SOURCES, "raf", Source("raf", "RAF-DB", "aligned RAF-DB faces", "subset", ("train", "test"),
                                               target_bank, "paths", (ScoredPart("test", "test", ("final", "phase1")),)))
    data = {"fer": fer, "target": target, "raf": raf}
    paths = {"fer": "fer.npz", "target": "target.npz", "raf": "raf.npz"}
    sets = evaluation_sets(data, paths)
    assert [s.key for s in sets] == ["fer_public_test", "fer_private_test", "target_val", "target_val_phase1",
                                     "raf_test", "raf_test_phase1"]
    raf_test = sets[-2]
    assert (raf_test.title, raf_test.part, raf_test.role) == ("RAF-DB test, final model", "RAF-DB test", "final")
    assert raf_test.ids.tolist() == ["test/3.jpg", "test/4.jpg", "test/6.jpg", "test/7.jpg"]   # unlabeled 5 left out
    assert raf_test.labels.tolist() == [3, 4, 6, 0] and raf_test.synthetic is False
    with pytest.raises(PipelineError, match=r"raf.npz: missing array `subset`"):
        evaluation_sets({**data, "raf": {k: v for k, v in raf.items() if k != "subset"}}, paths)
    with pytest.raises(PipelineError, match=r"no arrays given for source 'raf'"):
        evaluation_sets({"fer": fer, "target": target}, paths)


@pytest.mark.parametrize("mutate, message", [
    (lambda f, e: f.pop("usage"), "fer.npz: missing array `usage`"),
    (lambda f, e: f.__setitem__("labels", np.r_[f["labels"][:-1], 9]), "fer.npz: row 19 has label 9"),
    (lambda f, e: e.__setitem__("paths", e["paths"][:-1]), "target.npz: array `paths` has 23 rows"),
    (lambda f, e: e.__setitem__("split", np.where(e["split"] == "Val", "Train", e["split"])),
     "target.npz: no labelled Val faces"),
])
def test_malformed_inputs_name_the_file_and_row(mutate, message):
    fer, target = make_data()
    mutate(fer, target)
    with pytest.raises(PipelineError, match=message.replace("(", r"\(")):
        evaluation_sets({"fer": fer, "target": target}, {"fer": "fer.npz", "target": "target.npz"})


def test_write_outputs(tmp_path):
    fer, target = make_data(test_labelled=True)
    sets = evaluation_sets({"fer": fer, "target": target}, {"fer": "fer.npz", "target": "target.npz"})
    scored = score(sets, fake_predict, lambda role: False)
    paths = dict(metrics_path=tmp_path / "metrics" / "eval.json", plots_dir=tmp_path / "plots",
                 reports_dir=tmp_path / "reports")
    info = {"model": "alexnet", "schemes": "fer28 -> target"}
    metrics = write_outputs(scored, CFG, 0, info, **paths)
    saved = json.loads(paths["metrics_path"].read_text())
    scores = json.loads((tmp_path / "reports" / "scores.json").read_text())
    assert saved == metrics and saved["synthetic"] is True and scores["model"] == "alexnet"
    keys = ("fer_public_test", "fer_private_test", "target_val", "target_val_phase1", "target_test")
    # Only the headline figures are metrics (what `dvc exp show` lists); the rest is reported.
    assert set(saved) == {"synthetic", *keys} and set(scores["sets"]) == set(keys)
    for key in keys:
        block = saved[key]
        assert set(block) == {"accuracy", "accuracy_ci95_low", "accuracy_ci95_high", "balanced_accuracy",
                              "macro_f1", "cost_accuracy", "n", "selected_here"}
        assert block["selected_here"] is False   # these checkpoints record no selection
        assert scores["sets"][key] == {**block, "per_class": scores["sets"][key]["per_class"], "synthetic": True}
        assert sum(c["support"] for c in scores["sets"][key]["per_class"].values()) == block["n"]
        assert block["accuracy_ci95_low"] <= block["accuracy"] <= block["accuracy_ci95_high"]
        rows = json.loads((tmp_path / "plots" / f"{key}.json").read_text())
        assert len(rows) == block["n"]
        assert (tmp_path / "reports" / f"confusion_{key}.png").read_bytes()[:4] == b"\x89PNG"
    phase1 = json.loads((tmp_path / "plots" / "target_val_phase1.json").read_text())
    assert [LABEL_OF[r["predicted"]] for r in phase1] == fake_predict("phase1", sets[3].images).argmax(1).tolist()
    with open(tmp_path / "reports" / "predictions" / "target_val.csv") as fh:
        table = list(csv.DictReader(fh))
    val = sets[2]
    assert [r["id"] for r in table] == val.ids.tolist()
    assert [LABEL_OF[r["true"]] for r in table] == val.labels.tolist()
    proba = fake_predict("final", val.images)
    assert [LABEL_OF[r["predicted"]] for r in table] == proba.argmax(1).tolist()
    assert float(table[0]["p_Angry"]) == pytest.approx(proba[0, 0], abs=1e-6)
    assert "Synthetic data" in (tmp_path / "reports" / "summary.md").read_text()


def test_rerun_gives_identical_bytes_and_drops_sets_no_longer_scored(tmp_path, monkeypatch):
    from staged_fer.evaluation import scoring
    # PNG bytes are save_figure's concern; a stand-in keeps this test fast.
    monkeypatch.setattr(scoring, "confusion_figure", lambda cm, title, path: path.write_bytes(cm.tobytes()))
    fer, target = make_data(test_labelled=True)
    scored = score(evaluation_sets({"fer": fer, "target": target}, {"fer": "f", "target": "e"}), fake_predict, lambda role: False)
    paths = dict(metrics_path=tmp_path / "metrics" / "eval.json", plots_dir=tmp_path / "plots",
                 reports_dir=tmp_path / "reports")
    info = {"model": "alexnet", "schemes": "fer28 -> target"}
    write_outputs(scored, CFG, 0, info, **paths)
    # A rerun gives identical bytes, so DVC skips what follows ...
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    write_outputs(scored, CFG, 0, info, **paths)
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before
    # ... and a run that no longer scores a set leaves none of its files behind.
    write_outputs(scored[:-1], CFG, 0, info, **paths)
    after = {p for p in tmp_path.rglob("*") if p.is_file()}
    gone = {p for p in before if "target_test" in p.name}
    assert len(gone) == 3 and after == set(before) - gone
    assert "target_test" not in json.loads((tmp_path / "reports" / "scores.json").read_text())["sets"]


def test_failed_write_keeps_previous_outputs(tmp_path, monkeypatch):
    from staged_fer.evaluation import scoring
    fer, target = make_data()
    scored = score(evaluation_sets({"fer": fer, "target": target}, {"fer": "f", "target": "e"}), fake_predict, lambda role: False)
    paths = dict(metrics_path=tmp_path / "eval.json", plots_dir=tmp_path / "plots", reports_dir=tmp_path / "reports")
    calls = []

    def figure(cm, title, path):
        calls.append(path)
        if len(calls) == 7:
            raise OSError("disk full")
        path.write_bytes(title.encode())

    monkeypatch.setattr(scoring, "confusion_figure", figure)
    write_outputs(scored, CFG, 0, {}, **paths)
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    other = score(evaluation_sets({"fer": fer, "target": target}, {"fer": "f", "target": "e"}), lambda role, x: fake_predict(role, x)[:, ::-1].copy(),
                  lambda role: True)
    with pytest.raises(OSError, match="disk full"):
        write_outputs(other, CFG, 0, {}, **paths)
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before
    assert not [p for p in tmp_path.rglob("*") if p.name.startswith(".")]


def test_real_data_not_labelled_synthetic_unless_the_model_is():
    fer, target = make_data(synthetic=False)
    sets = evaluation_sets({"fer": fer, "target": target}, {"fer": "f", "target": "e"})
    assert not any(s.synthetic for s in score(sets, fake_predict, lambda role: False) for s in [s.set])
    scored = score(sets, fake_predict, lambda role: role == "phase1")
    assert [s.set.synthetic for s in scored] == [False, False, False, True]


def test_model_output_of_wrong_shape_is_an_error():
    fer, target = make_data()
    with pytest.raises(PipelineError, match=r"FER PublicTest: model returned probabilities of shape \(10, 6\), expected \(10, 7\)"):
        score(evaluation_sets({"fer": fer, "target": target}, {"fer": "f", "target": "e"}), lambda role, x: np.ones((len(x), 6)), lambda r: False)


def test_sets_that_chose_the_epoch_are_marked_optimistic(tmp_path):
    fer, target = make_data()
    scored = score(evaluation_sets({"fer": fer, "target": target}, {"fer": "fer.npz", "target": "target.npz"}), fake_predict, lambda role: False)
    info = {"model": "alexnet", "schemes": "fer28 -> target",
            "selected_on": {"phase1": ["FER PublicTest"], "final": ["Target Val"]}}
    metrics = write_outputs(scored, CFG, 0, info, metrics_path=tmp_path / "m.json", plots_dir=tmp_path / "p",
                            reports_dir=tmp_path / "r")
    assert "selected_on" not in metrics
    assert {k: metrics[k]["selected_here"] for k in ("fer_public_test", "fer_private_test", "target_val",
                                                     "target_val_phase1")} == {
        "fer_public_test": False,        # scored by the final model, which chose on Target Val
        "fer_private_test": False, "target_val": True, "target_val_phase1": False}
    summary = (tmp_path / "r" / "summary.md").read_text()
    assert "their numbers are optimistic" in summary and summary.count("| yes |") >= 1
