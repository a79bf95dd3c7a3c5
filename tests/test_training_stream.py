"""Training streamed from the face store gives the weights of training with the faces resident."""
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from staged_fer import store
from staged_fer.params import load_params, section
from staged_fer.data.splits import Bank, Split
from staged_fer.inputs.batches import DeviceImages, StreamedImages, centre_crops, place_images
from staged_fer.inputs.input_params import InputConfig
from staged_fer.training.phase_params import RuntimeConfig, PhaseConfig
from staged_fer.training.loop import Trainer
from tests.test_training_loop import faces, tiny_net, write_project

pytestmark = pytest.mark.usefixtures("one_thread")
SPEC = SimpleNamespace(size=16, mean=(124.0, 116.0, 104.0), std=(58.0, 57.0, 57.0))


def _store_banks(folder, side=20):
    """Train and Val banks as rows of a face store of three shards (one of them empty)."""
    images, labels = faces(60, side, 2)
    cuts = [0, 25, 25, 60]
    shas = [store.write_shard(folder / store.shard_name(k), images[a:b]) for k, (a, b) in enumerate(zip(cuts, cuts[1:]))]
    split = np.array(["Train"] * 44 + ["Val"] * 16)
    store.write_index(folder / store.INDEX, {"labels": labels, "split": split, "paths": np.arange(60).astype(str),
                                             "outcome": np.array(["aligned"] * 60)},
                      np.diff(cuts), shas, side, source="dir", align="{}")
    data = store.open_store(folder)
    rows = {s: np.flatnonzero(data["split"] == s)[::-1].copy() for s in ("Train", "Val")}   # any row order
    return [Bank(f"EmotiW {s}", store.FaceRows(data["images"], r), data["labels"][r], "target") for s, r in rows.items()]


def test_streamed_and_resident_training_give_the_same_weights(tmp_path):
    params = load_params(write_project(tmp_path, phase1__epochs=1, phase1__batch_size=16))
    train, val = _store_banks(tmp_path)
    fer = Bank("FER Training", *faces(30, 12, 0))   # a second resolution: two groups per batch
    split = Split("fer32_target", (fer, train), (val,), True)
    results = {}
    for budget in (None, 0):
        torch.manual_seed(0)
        trainer = Trainer(tiny_net(), SPEC, split, section(params, "phase1", PhaseConfig),
                          section(params, "input", InputConfig), section(params, "runtime", RuntimeConfig), 0,
                          torch.device("cpu"), progress=False, memory_budget=budget)
        kind = StreamedImages if budget == 0 else DeviceImages
        assert type(trainer.train_data) is kind and type(trainer.val_data) is kind
        results[budget] = trainer.fit()
    resident, streamed = results[None], results[0]
    assert resident.history == streamed.history
    for key, value in resident.state_dict.items():
        assert torch.equal(value, streamed.state_dict[key]), key


def test_the_choice_is_automatic_and_said(tmp_path):
    train, _ = _store_banks(tmp_path)
    need = len(train) * 20 * 20
    placed, line = place_images([train], torch.device("cpu"), budget=need)
    assert type(placed) is DeviceImages and line == f"{need / 2**30:.2f} GiB of faces on cpu (budget {need / 2**30:.2f} GiB, given)"
    placed, line = place_images([train], torch.device("cpu"), other=1, budget=need)
    assert type(placed) is StreamedImages and "streamed from disk to cpu per batch: more than the budget" in line
    placed, line = place_images([train], torch.device("cpu"))
    assert type(placed) is DeviceImages and "(budget" in line and "half the MemAvailable" in line
    crops = centre_crops(3, 20, 16)
    index = torch.tensor([5, 0, 5])
    assert torch.equal(placed.batch(index, crops, SPEC, 20, "rgb"),
                       StreamedImages([train], torch.device("cpu")).batch(index, crops, SPEC, 20, "rgb"))
