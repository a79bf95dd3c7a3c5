"""TrainedModel.load and predict_proba: the interface evaluation uses."""
import dataclasses

import numpy as np
import pytest
import torch
import torchvision.transforms.v2.functional as TF

from staged_fer.params import load_params, parse
from staged_fer.errors import PipelineError
from staged_fer.inputs.input_params import InputConfig
from staged_fer.models import ModelsConfig, build_model, input_spec
from staged_fer.models.checkpoint import Checkpoint
from staged_fer.models.trained import TrainedModel

# params.yaml's models section, every model offline at a small size.
MODELS = {name: {**cfg, "weights": "none", "input_size": 64}
          for name, cfg in load_params("params.yaml")["models"].items()}
INPUT = InputConfig(resize=72, flip=True)


def models_cfg(**alexnet):
    raw = {k: dict(v) for k, v in MODELS.items()}
    raw["alexnet"].update(alexnet)
    return parse(ModelsConfig, raw, "models")


@pytest.fixture(scope="module")
def checkpoint(module_tmp):
    torch.manual_seed(0)
    model = build_model("alexnet", models_cfg(), pretrained=False)
    path = module_tmp("ckpt") / "phase1.pt"
    Checkpoint(model="alexnet", state_dict=model.state_dict(),
               params={"seed": 0, "model": "alexnet", "models": MODELS, "input": vars(INPUT)},
               epoch=3, best_val_acc=0.5,
               history=[{"epoch": 1, "val_acc": 0.5}], synthetic=True, scheme="fer28").write(path)
    return path, model.eval()


def faces(n, side, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, side, side), dtype=np.uint8)


def test_loading_rebuilds_the_model_and_its_spec(checkpoint):
    path, original = checkpoint
    model = TrainedModel.load(path, "cpu", models_cfg(), INPUT)
    assert not model.network.training
    assert model.spec == input_spec("alexnet", models_cfg())
    assert model.run.epoch == 3 and model.run.scheme == "fer28" and model.run.synthetic is True
    assert model.run.state_dict == {}   # the weights are held once, by the network
    for key, value in original.state_dict().items():
        assert torch.equal(model.network.state_dict()[key], value), key


def test_a_checkpoint_reads_back_as_written_and_an_older_one_lacks_the_later_keys(tmp_path):
    weights = {"w": torch.arange(3.0)}
    written = Checkpoint(model="alexnet", state_dict=weights, params={"seed": 1}, epoch=2, best_val_acc=0.5,
                         history=[{"epoch": 1, "val_acc": 0.5}], synthetic=False, scheme="fer28",
                         selected_on=["FER PublicTest"], align={"size": 256}, gpus={"ids": ["0"]})
    written.write(tmp_path / "new.pt")
    read = Checkpoint.read(tmp_path / "new.pt")
    assert dataclasses.replace(read, state_dict={}) == dataclasses.replace(written, state_dict={})
    assert read.state_dict.keys() == {"w"} and torch.equal(read.state_dict["w"], weights["w"])
    saved = torch.load(tmp_path / "new.pt", weights_only=True)
    assert list(saved) == [f.name for f in dataclasses.fields(Checkpoint)]
    for later in ("selected_on", "align", "gpus"):
        del saved[later]
    torch.save(saved, tmp_path / "old.pt")
    old = Checkpoint.read(tmp_path / "old.pt")
    assert (old.selected_on, old.align, old.gpus) == (None, None, None) and old.epoch == 2
    with pytest.raises(PipelineError, match="old.pt: older checkpoint format"):
        Checkpoint.read(tmp_path / "old.pt", align_required=True)


def test_the_same_checkpoint_is_the_same_bytes_under_any_name(tmp_path):
    """DVC hashes the file: torch.save given a path names its records after the (temporary)
    file name; the checkpoint must not depend on it."""
    ckpt = Checkpoint(model="alexnet", state_dict={"w": torch.arange(3.0)}, params={"seed": 1}, epoch=1,
                      best_val_acc=None, history=[], synthetic=False, scheme="fer28")
    ckpt.write(tmp_path / "a.pt")
    ckpt.write(tmp_path / "b" / "phase1.pt")
    assert (tmp_path / "a.pt").read_bytes() == (tmp_path / "b" / "phase1.pt").read_bytes()


def test_predict_proba_is_softmax_of_the_torchvision_centre_crop(checkpoint):
    path, original = checkpoint
    model = TrainedModel.load(path, "cpu", models_cfg(), INPUT)
    spec = model.spec
    images = faces(5, 48)
    probs = model.predict_proba(images, batch_size=2)
    assert probs.shape == (5, 7) and probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(1), 1, atol=1e-5)
    x = TF.resize(torch.from_numpy(images)[:, None].float(), [72, 72], antialias=False)
    x = TF.center_crop(x, [64, 64]).expand(-1, 3, -1, -1)
    x = (x - torch.tensor(spec.mean)[:, None, None]) / torch.tensor(spec.std)[:, None, None]
    with torch.no_grad():
        want = torch.softmax(original(x), 1).numpy()
    np.testing.assert_allclose(probs, want, atol=1e-5)
    np.testing.assert_allclose(model.predict_proba(images, batch_size=256), probs, atol=1e-6)


def test_predict_proba_takes_target_sized_faces_and_empty_input(checkpoint):
    model = TrainedModel.load(checkpoint[0], "cpu", models_cfg(), INPUT)
    assert dataclasses.replace(model, input=InputConfig(256, False)).predict_proba(faces(2, 256)).shape == (2, 7)
    assert model.predict_proba(faces(0, 48)).shape == (0, 7)


def test_predict_proba_rejects_bad_images(checkpoint):
    model = TrainedModel.load(checkpoint[0], "cpu", models_cfg(), INPUT)
    with pytest.raises(PipelineError, match="uint8"):
        model.predict_proba(faces(2, 48).astype(np.float32))
    with pytest.raises(PipelineError, match="input.resize"):
        dataclasses.replace(model, input=InputConfig(48, False)).predict_proba(faces(2, 48))


def test_loading_errors_name_the_file(checkpoint, tmp_path):
    with pytest.raises(PipelineError, match="missing.pt: checkpoint not found"):
        TrainedModel.load(tmp_path / "missing.pt", "cpu", models_cfg(), INPUT)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(PipelineError, match="junk.pt: not a readable checkpoint"):
        TrainedModel.load(junk, "cpu", models_cfg(), INPUT)
    partial = tmp_path / "partial.pt"
    torch.save({"model": "alexnet"}, partial)
    with pytest.raises(PipelineError, match="partial.pt: checkpoint lacks key `state_dict`"):
        TrainedModel.load(partial, "cpu", models_cfg(), INPUT)
    with pytest.raises(PipelineError, match="trained at input_size 64"):
        TrainedModel.load(checkpoint[0], "cpu", models_cfg(input_size=96), INPUT)


def test_a_checkpoint_is_read_with_the_normalisation_it_was_trained_with(tmp_path):
    # VGG-CNN-M-2048 from random weights takes unit-scale pixels; its Caffe weights, raw ones.
    path = tmp_path / "vgg_m.pt"
    Checkpoint(model="vgg_m", state_dict={}, params={"seed": 0, "model": "vgg_m", "models": MODELS,
               "input": vars(INPUT)}, epoch=1, best_val_acc=0.5, history=[], synthetic=True,
               scheme="fer28").write(path)
    caffe = {k: dict(v) for k, v in MODELS.items()}
    caffe["vgg_m"]["weights"] = "imagenet"
    with pytest.raises(PipelineError, match=r"vgg_m.pt: trained on inputs .* / \(58.395, 57.12, 57.375\) but "
                                            r"params.yaml `models.vgg_m` gives .* / \(1.0, 1.0, 1.0\); rerun"):
        TrainedModel.load(path, "cpu", parse(ModelsConfig, caffe, "models"), INPUT)
