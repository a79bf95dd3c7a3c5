"""load_checkpoint and predict_proba: the interface evaluation uses."""
import numpy as np
import pytest
import torch
import torchvision.transforms.v2.functional as TF

from staged_fer.config import load_params, parse
from staged_fer.errors import PipelineError
from staged_fer.inputs.config import InputConfig
from staged_fer.models import ModelsConfig, build_model, input_spec
from staged_fer.models.checkpoint import load_checkpoint, write_checkpoint
from staged_fer.models.inference import predict_proba

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
    path = module_tmp("ckpt") / "stage1.pt"
    write_checkpoint(path, model="alexnet", state_dict=model.state_dict(),
                     params={"seed": 0, "model": "alexnet", "models": MODELS, "input": vars(INPUT)},
                     epoch=3, best_val_acc=0.5,
                     history=[{"epoch": 1, "val_acc": 0.5}], synthetic=True, scheme="fer28")
    return path, model.eval()


def faces(n, side, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, side, side), dtype=np.uint8)


def test_load_checkpoint_rebuilds_the_model_and_its_spec(checkpoint):
    path, original = checkpoint
    model, spec, ckpt = load_checkpoint(path, models_cfg(), "cpu")
    assert not model.training
    assert spec == input_spec("alexnet", models_cfg())
    assert ckpt["epoch"] == 3 and ckpt["scheme"] == "fer28" and ckpt["synthetic"] is True
    for key, value in original.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key


def test_predict_proba_is_softmax_of_the_torchvision_centre_crop(checkpoint):
    path, original = checkpoint
    model, spec, _ = load_checkpoint(path, models_cfg(), "cpu")
    images = faces(5, 48)
    probs = predict_proba(model, spec, images, INPUT, "cpu", batch_size=2)
    assert probs.shape == (5, 7) and probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(1), 1, atol=1e-5)
    x = TF.resize(torch.from_numpy(images)[:, None].float(), [72, 72], antialias=False)
    x = TF.center_crop(x, [64, 64]).expand(-1, 3, -1, -1)
    x = (x - torch.tensor(spec.mean)[:, None, None]) / torch.tensor(spec.std)[:, None, None]
    with torch.no_grad():
        want = torch.softmax(original(x), 1).numpy()
    np.testing.assert_allclose(probs, want, atol=1e-5)
    np.testing.assert_allclose(predict_proba(model, spec, images, INPUT, "cpu", batch_size=256), probs, atol=1e-6)


def test_predict_proba_takes_emotiw_sized_faces_and_empty_input(checkpoint):
    model, spec, _ = load_checkpoint(checkpoint[0], models_cfg(), "cpu")
    assert predict_proba(model, spec, faces(2, 256), InputConfig(256, False), "cpu").shape == (2, 7)
    assert predict_proba(model, spec, faces(0, 48), INPUT, "cpu").shape == (0, 7)


def test_predict_proba_rejects_bad_images(checkpoint):
    model, spec, _ = load_checkpoint(checkpoint[0], models_cfg(), "cpu")
    with pytest.raises(PipelineError, match="uint8"):
        predict_proba(model, spec, faces(2, 48).astype(np.float32), INPUT, "cpu")
    with pytest.raises(PipelineError, match="input.resize"):
        predict_proba(model, spec, faces(2, 48), InputConfig(48, False), "cpu")


def test_load_checkpoint_errors_name_the_file(checkpoint, tmp_path):
    with pytest.raises(PipelineError, match="missing.pt: checkpoint not found"):
        load_checkpoint(tmp_path / "missing.pt", models_cfg(), "cpu")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(PipelineError, match="junk.pt: not a readable checkpoint"):
        load_checkpoint(junk, models_cfg(), "cpu")
    partial = tmp_path / "partial.pt"
    torch.save({"model": "alexnet"}, partial)
    with pytest.raises(PipelineError, match="partial.pt: checkpoint lacks key `state_dict`"):
        load_checkpoint(partial, models_cfg(), "cpu")
    with pytest.raises(PipelineError, match="trained at input_size 64"):
        load_checkpoint(checkpoint[0], models_cfg(input_size=96), "cpu")


def test_a_checkpoint_is_read_with_the_normalisation_it_was_trained_with(tmp_path):
    # VGG-CNN-M-2048 from random weights takes unit-scale pixels; its Caffe weights, raw ones.
    path = tmp_path / "vgg_m.pt"
    write_checkpoint(path, model="vgg_m", state_dict={}, params={"seed": 0, "model": "vgg_m", "models": MODELS,
                     "input": vars(INPUT)}, epoch=1, best_val_acc=0.5, history=[], synthetic=True, scheme="fer28")
    caffe = {k: dict(v) for k, v in MODELS.items()}
    caffe["vgg_m"]["weights"] = "imagenet"
    with pytest.raises(PipelineError, match=r"vgg_m.pt: trained on inputs .* / \(58.395, 57.12, 57.375\) but "
                                            r"params.yaml `models.vgg_m` gives .* / \(1.0, 1.0, 1.0\); rerun"):
        load_checkpoint(path, parse(ModelsConfig, caffe, "models"), "cpu")
