"""The two networks: shapes, pinned parameter counts, weights loading, input conventions."""
from __future__ import annotations

import logging
import urllib.error

import pytest
import torch
from torch import nn
from torchvision.models import AlexNet, AlexNet_Weights

from staged_fer.params import parse
from staged_fer.errors import PipelineError
from staged_fer.models import (MODEL_NAMES, PAPER_MODELS, ModelsConfig, build_model, count_parameters, head,
                               input_spec)
from staged_fer.inputs.gray import GrayConv, fold_gray_input, unfold_gray_input
from staged_fer.models.alexnet import WEIGHTS as ALEXNET_WEIGHTS
from staged_fer.models.init import he_init
from staged_fer.models.registry import ENTRIES
from staged_fer.models.torchvision_weights import cache_file
from staged_fer.models.vgg_m import VggM
from tests.params_baseline import baseline_params

PARAMS = baseline_params()


def config(**overrides) -> ModelsConfig:
    raw = {name: dict(values) for name, values in PARAMS["models"].items()}
    for name, values in overrides.items():
        raw[name].update(values)
    return parse(ModelsConfig, raw, "models")


OFFLINE = config(**{name: {"weights": "none"} for name in MODEL_NAMES})


@pytest.fixture
def no_network(monkeypatch):
    def refuse(url, *args, **kwargs):
        raise urllib.error.URLError(f"no network for {url}")
    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)


@pytest.mark.parametrize("overrides, message", [
    ({"vgg_m": {"caffemodel_md5": "abc"}}, "caffemodel_md5 'abc' is not 32"),
    ({"alexnet": {"input_size": 62}}, "alexnet needs at least 63"),
    ({"vgg_m": {"weights": "caffe"}}, "`models.vgg_m.weights` is 'caffe'"),
    ({"alexnet": {"extra": 1}}, "unknown key `models.alexnet.extra`"),
])
def test_bad_models_section_is_named(overrides, message):
    with pytest.raises(PipelineError, match=message.replace("(", r"\(")):
        config(**overrides)


def test_pinned_parameter_counts(caplog):
    with caplog.at_level(logging.INFO, logger="staged_fer.models"), torch.device("meta"):
        alexnet = build_model("alexnet", OFFLINE)
        vgg_m = build_model("vgg_m", OFFLINE)
    # torchvision's 61,100,840 with its 4096x1000 classifier replaced by 4096x7.
    assert count_parameters(alexnet) == 57_032_519
    with torch.device("meta"):
        reference = AlexNet()
    assert count_parameters(reference) == AlexNet_Weights.IMAGENET1K_V1.meta["num_params"] == 61_100_840
    assert count_parameters(vgg_m) == 90_435_207
    assert "vgg_m: 90,435,207 parameters (14,343 in the fresh 7-way head)" in caplog.text
    assert "alexnet: 57,032,519 parameters" in caplog.text
    assert alexnet.classifier[-1].out_features == vgg_m.classifier[-1].out_features == 7


def test_unknown_model_lists_the_choices():
    with pytest.raises(PipelineError, match="`model` is 'vgg16'; expected one of: alexnet, vgg_m"):
        build_model("vgg16", OFFLINE)
    with pytest.raises(PipelineError, match="alexnet, vgg_m"):
        input_spec("resnet", OFFLINE)
    assert PAPER_MODELS == ("alexnet", "vgg_m") == MODEL_NAMES[:2]


def test_vgg_m_shapes_at_224():
    model = VggM(num_classes=7).eval()
    sizes = {}
    for name in ("conv1", "pool1", "conv2", "pool2", "conv5", "pool5"):
        model.features.get_submodule(name).register_forward_hook(
            lambda m, i, out, name=name: sizes.__setitem__(name, tuple(out.shape[1:])))
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        pool5 = model.features(x)
        assert torch.equal(model.avgpool(pool5), pool5)  # the adaptive pooling is the identity at 224
        assert model(x).shape == (1, 7)
    # Ceil-mode pooling: floor would give 12 after pool2 and 5 after pool5.
    assert sizes == {"conv1": (96, 109, 109), "pool1": (96, 54, 54), "conv2": (256, 26, 26),
                     "pool2": (256, 13, 13), "conv5": (512, 13, 13), "pool5": (512, 6, 6)}


def test_vgg_m_lrn_is_caffes():
    # Caffe ACROSS_CHANNELS: b_c = a_c / (k + alpha/n * sum over the n channels around c of a^2)^beta
    a = torch.randn(2, 9, 4, 4, dtype=torch.float64) * 10
    n, alpha, beta, k = 5, 0.0005, 0.75, 2.0
    squares = torch.nn.functional.pad(a * a, (0, 0, 0, 0, n // 2, n // 2))
    window = sum(squares[:, i:i + a.shape[1]] for i in range(n))
    expected = a / (k + alpha / n * window) ** beta
    with torch.device("meta"):
        lrn = VggM(num_classes=7).features.norm1
    torch.testing.assert_close(lrn(a), expected, rtol=1e-12, atol=1e-12)


def test_small_inputs_run_and_init_is_seeded():
    torch.manual_seed(3)
    a = build_model("vgg_m", OFFLINE)
    torch.manual_seed(3)
    b = build_model("vgg_m", OFFLINE)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    with torch.no_grad():
        assert a.eval()(torch.randn(2, 3, 41, 41)).shape == (2, 7)
        assert build_model("alexnet", OFFLINE).eval()(torch.randn(2, 3, 63, 63)).shape == (2, 7)


def test_alexnet_imagenet_weights_from_torch_cache(torch_home, no_network):
    torch.manual_seed(1)
    stored = AlexNet().state_dict()
    torch_home.mkdir(parents=True)
    torch.save(stored, torch_home / "alexnet-owt-7be5be79.pth")
    assert cache_file(ALEXNET_WEIGHTS) == torch_home / "alexnet-owt-7be5be79.pth"
    model = build_model("alexnet", config())
    for name, value in model.state_dict().items():
        if name.startswith("classifier.6."):
            assert value.shape[0] == 7
        else:
            assert torch.equal(value, stored[name]), name


def test_alexnet_offline_names_file_and_folder(torch_home, no_network):
    with pytest.raises(PipelineError) as err:
        build_model("alexnet", config())
    assert f"place alexnet-owt-7be5be79.pth in {torch_home}" in str(err.value)


def test_alexnet_corrupt_cache_is_named(torch_home, no_network):
    torch_home.mkdir(parents=True)
    (torch_home / "alexnet-owt-7be5be79.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(PipelineError, match="delete the file and rerun"):
        build_model("alexnet", config())


def test_pretrained_false_loads_nothing(torch_home, no_network):
    for name in MODEL_NAMES:  # weights: imagenet, nothing cached, no network: still builds
        with torch.device("meta"):
            assert isinstance(build_model(name, config(), pretrained=False), nn.Module)


def test_alexnet_spec_is_torchvisions_normalisation():
    spec = input_spec("alexnet", config())
    transform = AlexNet_Weights.IMAGENET1K_V1.transforms()
    pixels = torch.randint(0, 256, (2, 3, 8, 8), dtype=torch.uint8)
    expected = (pixels / 255.0 - torch.tensor(transform.mean).view(1, 3, 1, 1)) / torch.tensor(transform.std).view(1, 3, 1, 1)
    torch.testing.assert_close(spec.normalize(pixels), expected, rtol=1e-6, atol=1e-6)
    assert (spec.size, spec.channel_order) == (227, "RGB")


def test_vgg_m_spec_is_mean_pixel_subtraction():
    spec = input_spec("vgg_m", config())
    assert (spec.size, spec.std, spec.channel_order) == (224, (1.0, 1.0, 1.0), "RGB")
    # From random weights the pixels are brought to unit scale, as He init assumes.
    scratch = input_spec("vgg_m", OFFLINE)
    assert scratch.mean == spec.mean and min(scratch.std) > 50
    # conv1 is flipped to RGB on conversion, so the mean pixel is the published BGR one reversed.
    assert spec.mean[::-1] == (103.939, 116.779, 123.68)
    pixels = torch.randint(0, 256, (1, 3, 4, 4), dtype=torch.uint8)
    torch.testing.assert_close(spec.normalize(pixels), pixels.float() - torch.tensor(spec.mean).view(1, 3, 1, 1))


@pytest.mark.parametrize("model_entry", ENTRIES, ids=MODEL_NAMES)
def test_gray_fold_matches_replicated_input(model_entry):
    """Every registered network, its own input spec: conv1 folded for one grey channel normalised
    with the mean of the channel means and stds, against the replicated 3-channel input."""
    # In float64, so that the comparison sees the algebra rather than float32 rounding.
    torch.manual_seed(0)
    name, size = model_entry.name, model_entry.min_input_size + 3
    cfg = config()
    spec = input_spec(name, cfg)
    model = build_model(name, cfg, pretrained=False).eval().double()
    keys = list(model.state_dict())
    gray = torch.randint(0, 256, (3, 1, size, size), dtype=torch.uint8).double()
    rgb = spec.normalize(gray.expand(-1, 3, -1, -1))
    one = (gray - sum(spec.mean) / 3) / (sum(spec.std) / 3)
    with torch.no_grad():
        expected = model(rgb)
    fold_gray_input(model, spec.mean, spec.std)
    assert sum(isinstance(m, GrayConv) for m in model.modules()) == 1
    model.double()
    with torch.no_grad():
        got = model(one)
    # AlexNet's conv1 pads by 2: its borders see the mean term only partly.
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    assert list(model.state_dict()) == keys
    unfold_gray_input(model)
    with torch.no_grad():
        torch.testing.assert_close(model(rgb), expected, rtol=0, atol=0)


@pytest.mark.parametrize("model_entry", ENTRIES, ids=MODEL_NAMES)
def test_registered_entry_is_complete(model_entry):
    """params.yaml holds each model's section at its default size; the smallest allowed input
    reaches the 7-way head and one pixel less is refused, naming the model."""
    name = model_entry.name
    assert PARAMS["models"][name]["input_size"] == model_entry.default_input_size
    assert input_spec(name, config()).size == model_entry.default_input_size
    cfg = config(**{name: {"weights": "none", "input_size": model_entry.min_input_size}})
    assert input_spec(name, cfg).size == model_entry.min_input_size
    model = build_model(name, cfg).eval()
    with torch.no_grad():
        assert model(torch.randn(2, 3, model_entry.min_input_size, model_entry.min_input_size)).shape == (2, 7)
    with pytest.raises(PipelineError, match=f"{name} needs at least {model_entry.min_input_size} pixels"):
        config(**{name: {"input_size": model_entry.min_input_size - 1}})


def test_he_init_on_bias_free_convolutions_and_batch_norm():
    """torchvision's ResNet: convolutions without bias, batch norms after them."""
    from torchvision.models import resnet18
    torch.manual_seed(0)
    model = resnet18()
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            nn.init.normal_(module.weight)
    he_init(model)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert convs and all(m.bias is None for m in convs)
    for m in convs:
        fan_out = m.out_channels * m.kernel_size[0] * m.kernel_size[1]
        assert m.weight.std().item() == pytest.approx((2.0 / fan_out) ** 0.5, rel=0.1)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            assert torch.equal(m.weight, torch.ones_like(m.weight)) and torch.count_nonzero(m.bias) == 0
    assert model.fc.weight.std().item() == pytest.approx(0.01, rel=0.1) and torch.count_nonzero(model.fc.bias) == 0


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_random_init_is_he_normal(name):
    """From scratch, every conv is He-normal (fan_out) and every linear layer below the fresh
    head N(0, 0.01); the head keeps PyTorch's default init, as it does on ImageNet weights."""
    torch.manual_seed(0)
    model = build_model(name, OFFLINE)
    fresh = head(model)
    for module in model.modules():
        if module is fresh:
            continue
        if isinstance(module, nn.Conv2d):
            fan_out = module.out_channels * module.kernel_size[0] * module.kernel_size[1]
            assert module.weight.std().item() == pytest.approx((2.0 / fan_out) ** 0.5, rel=0.1)
            assert module.bias is None or torch.count_nonzero(module.bias) == 0
        elif isinstance(module, nn.Linear):
            assert module.weight.std().item() == pytest.approx(0.01, rel=0.1)
