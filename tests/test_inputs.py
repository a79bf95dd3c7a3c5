"""The on-device input path against torchvision's Resize -> crop -> flip, and the exact gray conv1."""
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torchvision.transforms.v2.functional as TF
from torch import nn

from staged_fer.errors import PipelineError
from staged_fer.inputs.batches import DeviceImages, centre_crops, check_resize, random_crops
from staged_fer.inputs.gray import GrayConv, fold_gray_input, unfold_gray_input

SPEC = SimpleNamespace(size=40, mean=(123.675, 116.28, 103.53), std=(58.395, 57.12, 57.375))
RESIZE = 56


def bank(n, side, seed):
    rng = np.random.default_rng(seed)
    return SimpleNamespace(images=rng.integers(0, 256, (n, side, side), dtype=np.uint8),
                           labels=rng.integers(0, 7, n))


def reference(image: np.ndarray, top: int, left: int, flip: bool, spec=SPEC) -> torch.Tensor:
    """torchvision: bilinear Resize(RESIZE) (upsampling), crop, flip, replicate, normalise."""
    x = torch.from_numpy(image)[None].float()
    if x.shape[-1] != RESIZE:
        x = TF.resize(x, [RESIZE, RESIZE], antialias=False)
    x = x[:, top:top + spec.size, left:left + spec.size]
    if flip:
        x = x.flip(-1)
    mean = torch.tensor(spec.mean)[:, None, None]
    std = torch.tensor(spec.std)[:, None, None]
    return (x.expand(3, -1, -1) - mean) / std


def test_crops_match_torchvision_for_mixed_resolutions():
    small, large = bank(6, 24, 0), bank(4, RESIZE, 1)   # upsampled bank and bank at `resize`
    data = DeviceImages([small, large], "cpu")
    crops = random_crops(10, RESIZE, SPEC.size, True, torch.Generator().manual_seed(3))
    assert crops.flip.any() and not crops.flip.all()
    got = data.batch(torch.arange(10), crops, SPEC, RESIZE, "rgb")
    images = list(small.images) + list(large.images)
    want = torch.stack([reference(images[i], int(crops.top[i]), int(crops.left[i]), bool(crops.flip[i]))
                        for i in range(10)])
    assert got.shape == (10, 3, SPEC.size, SPEC.size)
    torch.testing.assert_close(got, want, atol=1e-4, rtol=0)
    np.testing.assert_array_equal(data.labels.numpy(), np.concatenate([small.labels, large.labels]))


def test_batch_follows_the_index_order_across_banks():
    small, large = bank(3, 24, 2), bank(3, RESIZE, 3)
    data = DeviceImages([large, small], "cpu")
    index = torch.tensor([4, 0, 5, 1])
    crops = centre_crops(4, RESIZE, SPEC.size)
    got = data.batch(index, crops, SPEC, RESIZE, "rgb")
    images = list(large.images) + list(small.images)
    off = int(crops.top[0])
    want = torch.stack([reference(images[i], off, off, False) for i in index.tolist()])
    torch.testing.assert_close(got, want, atol=1e-4, rtol=0)


def test_centre_crop_offset_is_torchvision_centercrop():
    image = bank(1, RESIZE, 4).images[0]
    crops = centre_crops(1, RESIZE, SPEC.size)
    want = TF.center_crop(torch.from_numpy(image)[None], [SPEC.size, SPEC.size])[0]
    got = torch.from_numpy(image)[int(crops.top[0]):][:SPEC.size, int(crops.left[0]):][:, :SPEC.size]
    assert torch.equal(got, want)


def test_gray_batch_is_the_average_normalisation_of_one_channel():
    data = DeviceImages([bank(2, 24, 5)], "cpu")
    crops = random_crops(2, RESIZE, SPEC.size, True, torch.Generator().manual_seed(0))
    rgb = data.batch(torch.arange(2), crops, SPEC, RESIZE, "rgb")
    gray = data.batch(torch.arange(2), crops, SPEC, RESIZE, "gray")
    assert gray.shape == (2, 1, SPEC.size, SPEC.size)
    pixels = rgb[:, 0] * SPEC.std[0] + SPEC.mean[0]
    torch.testing.assert_close(gray[:, 0], (pixels - np.mean(SPEC.mean)) / np.mean(SPEC.std), atol=1e-4, rtol=0)


def test_random_crops_stay_inside_and_follow_the_generator():
    a = random_crops(500, RESIZE, SPEC.size, True, torch.Generator().manual_seed(7))
    b = random_crops(500, RESIZE, SPEC.size, True, torch.Generator().manual_seed(7))
    assert torch.equal(a.top, b.top) and torch.equal(a.left, b.left) and torch.equal(a.flip, b.flip)
    assert a.top.min() == 0 and a.top.max() == RESIZE - SPEC.size
    no_flip = random_crops(50, RESIZE, SPEC.size, False, torch.Generator().manual_seed(7))
    assert not no_flip.flip.any()


def test_resize_smaller_than_the_model_input_is_an_error():
    with pytest.raises(PipelineError, match="input.resize"):
        check_resize(200, 227)


def small_net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 5, stride=2, padding=2), nn.ReLU(), nn.AdaptiveAvgPool2d(3),
                         nn.Flatten(), nn.Linear(72, 7))


def test_gray_conv_equals_the_three_channel_model_and_keeps_its_state_dict():
    net = small_net()
    data = DeviceImages([bank(4, 24, 6)], "cpu")
    crops = random_crops(4, RESIZE, SPEC.size, True, torch.Generator().manual_seed(1))
    rgb = data.batch(torch.arange(4), crops, SPEC, RESIZE, "rgb")
    gray = data.batch(torch.arange(4), crops, SPEC, RESIZE, "gray")
    want = net(rgb)
    keys = list(net.state_dict())
    fold_gray_input(net, SPEC.mean, SPEC.std)
    assert isinstance(net[0], GrayConv)
    assert list(net.state_dict()) == keys
    torch.testing.assert_close(net(gray), want, atol=1e-5, rtol=1e-5)
    # Gradients reach the original 3-channel weights.
    net(gray).sum().backward()
    assert net[0].weight.grad.shape == (8, 3, 5, 5)
    unfold_gray_input(net)
    assert isinstance(net[0], nn.Conv2d) and net[0].in_channels == 3
    torch.testing.assert_close(net(rgb), want, atol=1e-5, rtol=1e-5)
