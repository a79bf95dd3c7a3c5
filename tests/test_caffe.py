"""The Caffe model reader and the VGG-CNN-M-2048 conversion, on caffemodels the tests write.

The writer below is an independent encoder of Caffe's protobuf wire format (field numbers from
caffe.proto), covering each layout the reader accepts: LayerParameter and the legacy
V1/V0 layers, BlobShape and the legacy 4-D blob dims, packed and unpacked floats and doubles.
"""
from __future__ import annotations

import hashlib
import http.server
import logging
import socket
import struct
import threading
from collections import OrderedDict
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from staged_fer.params import load_params, parse
from staged_fer.errors import PipelineError
from staged_fer.models import ModelsConfig, build_model
from staged_fer.models.caffe import (VGG_M_LAYERS, _varint, fetch_caffemodel, load_vgg_m_caffe,
                                     parse_caffemodel, read_caffemodel)
from staged_fer.models.vgg_m import VggM


# ---- an encoder of the wire format -------------------------------------------------------

def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def key(field: int, wire: int) -> bytes:
    return varint(field << 3 | wire)


def length_delimited(field: int, payload: bytes) -> bytes:
    return key(field, 2) + varint(len(payload)) + payload


def int_field(field: int, n: int) -> bytes:
    return key(field, 0) + varint(n)


def blob(array: np.ndarray, dims: str = "shape", packed: bool = True, double: bool = False) -> bytes:
    out = b""
    if dims == "shape":  # BlobShape.dim is packed int64 in caffe.proto
        out += length_delimited(7, length_delimited(1, b"".join(varint(d) for d in array.shape)))
    elif dims == "shape_unpacked":
        out += length_delimited(7, b"".join(int_field(1, d) for d in array.shape))
    elif dims == "legacy":
        padded = (1,) * (4 - array.ndim) + array.shape
        out += b"".join(int_field(f, d) for f, d in zip((1, 2, 3, 4), padded))
    flat = array.ravel()
    field, fmt, wire = (8, "<d", 1) if double else (5, "<f", 5)
    if packed:
        out += length_delimited(field, flat.astype(fmt).tobytes())
    else:
        out += b"".join(key(field, wire) + struct.pack(fmt, float(v)) for v in flat)
    return out


def layer(name: str, blobs: list[bytes], style: str = "layer") -> bytes:
    """One layer of a NetParameter: ``layer`` (100), legacy ``layers`` (2), or V0 inside V1."""
    if style == "layer":
        body = length_delimited(1, name.encode()) + length_delimited(2, b"Convolution")
        return length_delimited(100, body + b"".join(length_delimited(7, b) for b in blobs))
    if style == "v1":
        body = length_delimited(4, name.encode()) + int_field(5, 4)  # type: CONVOLUTION
        return length_delimited(2, body + b"".join(length_delimited(6, b) for b in blobs))
    v0 = length_delimited(1, name.encode()) + b"".join(length_delimited(50, b) for b in blobs)
    return length_delimited(2, length_delimited(1, v0))


def net(*layers: bytes) -> bytes:
    # A net name and legacy input dims first: fields the reader must skip.
    header = length_delimited(1, b"VGG_CNN_M_2048") + b"".join(int_field(4, d) for d in (10, 3, 224, 224))
    return header + b"".join(layers)


# ---- the reader ----------------------------------------------------------------------------

def test_small_caffemodel_reads_back_exactly(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {name: [rng.standard_normal(shape).astype(np.float32) for shape in shapes] for name, shapes in {
        "conv_a": [(4, 3, 2, 2), (4,)], "conv_b": [(2, 4, 3, 3), (2,)], "fc_c": [(5, 18), (5,)],
        "fc_d": [(3, 5), (3,)], "ip_e": [(2, 3), (2,)], "scale_f": [(7,)],
    }.items()}
    payload = net(
        layer("conv_a", [blob(a) for a in arrays["conv_a"]]),
        layer("relu_a", []),  # no blobs: not listed
        layer("conv_b", [blob(a, dims="legacy") for a in arrays["conv_b"]], style="v1"),
        layer("fc_c", [blob(a, dims="shape_unpacked", packed=False) for a in arrays["fc_c"]]),
        layer("fc_d", [blob(a, double=True) for a in arrays["fc_d"]], style="v0"),
        layer("ip_e", [blob(a, packed=False, double=True, dims="legacy") for a in arrays["ip_e"]], style="v1"),
        layer("scale_f", [blob(arrays["scale_f"][0], dims="none")]),
    )
    path = tmp_path / "small.caffemodel"
    path.write_bytes(payload)
    read = read_caffemodel(path)
    assert list(read) == ["conv_a", "conv_b", "fc_c", "fc_d", "ip_e", "scale_f"]
    for name, expected in arrays.items():
        got = read[name]
        assert len(got) == len(expected)
        for g, e in zip(got, expected):
            if name in ("conv_b", "ip_e"):  # legacy blobs are 4-D, as Caffe reads them
                assert g.shape == (1,) * (4 - e.ndim) + e.shape
            else:
                assert g.shape == e.shape
            assert g.dtype == np.float32
            np.testing.assert_array_equal(g.reshape(e.shape), e)


@pytest.mark.parametrize("n", [0, 1, 127, 128, 300, 2**21, 2**32 + 5, 2**63 - 1])
def test_varints_decode(n):
    encoded = varint(n) + b"\xff"  # a trailing byte the decoder must not read
    assert _varint(encoded, 0, len(encoded)) == (n, len(encoded) - 1)


def test_multi_byte_tags_and_lengths():
    # Field 100's tag (800) and a 1,200-byte blob both need two-byte varints.
    big = np.arange(300, dtype=np.float32)
    read = parse_caffemodel(net(layer("w", [blob(big.reshape(3, 100)), blob(big[:3])])))
    np.testing.assert_array_equal(read["w"][0].ravel(), big)


@pytest.mark.parametrize("payload, message", [
    (net(layer("conv1", [blob(np.ones((2, 2), np.float32))]))[:-3], "runs past the end"),
    (b'name: "VGG_CNN_M_2048"\nlayers {\n  name: "conv1"\n}\n', "not a readable Caffe model"),
    (net(layer("relu", [])), "no layer with blobs"),
    (net(layer("w", [blob(np.ones(2, np.float32))]), layer("w", [blob(np.ones(2, np.float32))])), "two layers named 'w'"),
    (net(layer("w", [length_delimited(7, length_delimited(1, varint(3))) + length_delimited(5, b"\0" * 8)])),
     "shape (3,) but 2 values"),
    (net(layer("w", [length_delimited(5, b"\0" * 6)])), "not a multiple of 4"),
])
def test_malformed_files_fail_naming_the_file(tmp_path, payload, message):
    path = tmp_path / "bad.caffemodel"
    path.write_bytes(payload)
    with pytest.raises(PipelineError) as err:
        read_caffemodel(path)
    assert str(path) in str(err.value) and message in str(err.value)


def test_missing_file_is_a_pipeline_error(tmp_path):
    with pytest.raises(PipelineError, match="cannot read"):
        read_caffemodel(tmp_path / "absent.caffemodel")


# ---- VGG-CNN-M-2048 conversion -------------------------------------------------------------

CAFFE_SHAPES = {"conv1": (96, 3, 7, 7), "conv2": (256, 96, 5, 5), "conv3": (512, 256, 3, 3),
                "conv4": (512, 512, 3, 3), "conv5": (512, 512, 3, 3), "fc6": (4096, 18432),
                "fc7": (2048, 4096), "fc8": (1000, 2048)}


def caffe_blobs(shapes: dict[str, tuple[int, ...]], seed: int = 0) -> dict[str, list[np.ndarray]]:
    """Random blobs, fc layers as Caffe's 2-D (out, in) matrices."""
    rng = np.random.default_rng(seed)
    return {name: [0.01 * rng.standard_normal(shape, dtype=np.float32),
                   0.01 * rng.standard_normal(shape[0], dtype=np.float32)] for name, shape in shapes.items()}


def write_vgg_m(path: Path, blobs: dict[str, list[np.ndarray]]) -> None:
    # fc6 in the legacy 4-D layout (1, 1, out, in) of V1 models: the converter reshapes it.
    with open(path, "wb") as fh:
        fh.write(net())
        for name, (w, b) in blobs.items():
            if name == "fc6":
                fh.write(layer(name, [blob(w, dims="legacy"), blob(b, dims="legacy")], style="v1"))
            else:
                fh.write(layer(name, [blob(w), blob(b)]))
            fh.write(layer(name.replace("conv", "relu").replace("fc", "relu"), []))


def tiny_vgg_m() -> nn.Module:
    """VggM's layer names and structure at a fraction of its widths: the converter maps blobs
    by name and takes each target shape from the model, so this exercises the same code."""
    model = nn.Module()
    model.features = nn.Sequential(OrderedDict([
        ("conv1", nn.Conv2d(3, 8, 7, stride=2)), ("relu1", nn.ReLU()),
        ("norm1", nn.LocalResponseNorm(5, 0.0005, 0.75, 2.0)), ("pool1", nn.MaxPool2d(3, 2, ceil_mode=True)),
        ("conv2", nn.Conv2d(8, 12, 5, stride=2, padding=1)), ("relu2", nn.ReLU()),
        ("norm2", nn.LocalResponseNorm(5, 0.0005, 0.75, 2.0)), ("pool2", nn.MaxPool2d(3, 2, ceil_mode=True)),
        ("conv3", nn.Conv2d(12, 16, 3, padding=1)), ("relu3", nn.ReLU()),
        ("conv4", nn.Conv2d(16, 16, 3, padding=1)), ("relu4", nn.ReLU()),
        ("conv5", nn.Conv2d(16, 16, 3, padding=1)), ("relu5", nn.ReLU()),
        ("pool5", nn.MaxPool2d(3, 2, ceil_mode=True)),
    ]))
    model.avgpool = nn.AdaptiveAvgPool2d(6)
    model.classifier = nn.Sequential(OrderedDict([
        ("fc6", nn.Linear(16 * 36, 32)), ("relu6", nn.ReLU()), ("drop6", nn.Dropout(0.5)),
        ("fc7", nn.Linear(32, 24)), ("relu7", nn.ReLU()), ("drop7", nn.Dropout(0.5)),
        ("fc8", nn.Linear(24, 7)),
    ]))
    return model


TINY_SHAPES = {"conv1": (8, 3, 7, 7), "conv2": (12, 8, 5, 5), "conv3": (16, 12, 3, 3), "conv4": (16, 16, 3, 3),
               "conv5": (16, 16, 3, 3), "fc6": (32, 576), "fc7": (24, 32), "fc8": (1000, 24)}


def features_below_head(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    x = torch.flatten(model.avgpool(model.features(images)), 1)
    return model.classifier[:-1](x)


def check_conversion(model: nn.Module, path: Path, blobs: dict[str, list[np.ndarray]], reference: nn.Module) -> None:
    head = {k: v.clone() for k, v in model.classifier.fc8.state_dict().items()}
    load_vgg_m_caffe(model, path)
    conv1 = model.features.conv1.weight.detach().numpy()
    np.testing.assert_array_equal(conv1, blobs["conv1"][0][:, ::-1])  # BGR -> RGB
    for name in ("conv2", "conv3", "conv4", "conv5", "fc6", "fc7"):
        module = model.get_submodule(VGG_M_LAYERS[name])
        np.testing.assert_array_equal(module.weight.detach().numpy().reshape(blobs[name][0].shape), blobs[name][0])
        np.testing.assert_array_equal(module.bias.detach().numpy(), blobs[name][1])
    for k, v in model.classifier.fc8.state_dict().items():  # the fresh head is untouched
        assert torch.equal(v, head[k])

    # The converted model on RGB computes what the Caffe model (blobs as they are, conv1 in
    # BGR) computes on the same image in BGR.
    with torch.no_grad():
        for name, module_name in VGG_M_LAYERS.items():
            module = reference.get_submodule(module_name)
            module.weight.copy_(torch.from_numpy(blobs[name][0]).reshape(module.weight.shape))
            module.bias.copy_(torch.from_numpy(blobs[name][1]))
    model.eval(), reference.eval()
    rgb = torch.rand(2, 3, 64, 64) * 255 - 120
    with torch.no_grad():
        ours, theirs = features_below_head(model, rgb), features_below_head(reference, rgb.flip(1))
    assert ours.abs().max() > 0
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-6)


def test_conversion_maps_flips_and_reshapes(tmp_path):
    with torch.device("meta"):
        full = VggM(num_classes=7)
    tiny = tiny_vgg_m()
    assert [(n, type(m)) for n, m in tiny.named_modules()][1:] == [(n, type(m)) for n, m in full.named_modules()][1:]
    blobs = caffe_blobs(TINY_SHAPES)
    path = tmp_path / "tiny.caffemodel"
    write_vgg_m(path, blobs)
    check_conversion(tiny_vgg_m(), path, blobs, tiny_vgg_m())


@pytest.fixture(scope="module")
def full_size(module_tmp):
    blobs = caffe_blobs(CAFFE_SHAPES)
    path = module_tmp("caffe") / "VGG_CNN_M_2048.caffemodel"
    write_vgg_m(path, blobs)
    return path, blobs


@pytest.mark.slow
def test_full_size_vgg_m_round_trip(full_size):
    path, blobs = full_size
    check_conversion(VggM(num_classes=7), path, blobs, VggM(num_classes=1000))


def test_wrong_network_is_named(tmp_path):
    blobs = caffe_blobs(TINY_SHAPES)
    blobs["conv2"] = [np.zeros((12, 8, 3, 3), np.float32), np.zeros(12, np.float32)]
    path = tmp_path / "other.caffemodel"
    write_vgg_m(path, blobs)
    with pytest.raises(PipelineError, match=r"layer 'conv2' weight has shape \(12, 8, 3, 3\).*needs \(12, 8, 5, 5\)"):
        load_vgg_m_caffe(tiny_vgg_m(), path)
    path.write_bytes(net(layer("conv1", [blob(w) for w in blobs["conv1"]])))
    with pytest.raises(PipelineError, match=r"no layer 'conv2' with weights \(found: conv1\)"):
        load_vgg_m_caffe(tiny_vgg_m(), path)
    path.write_bytes(net(layer("conv1", [blob(blobs["conv1"][0])])))
    with pytest.raises(PipelineError, match=r"layer 'conv1' has 1 blobs"):
        load_vgg_m_caffe(tiny_vgg_m(), path)


# ---- download into torch.hub's cache -------------------------------------------------------

@pytest.fixture
def server(tmp_path):
    """An HTTP server on 127.0.0.1 serving tmp_path/www."""
    root = tmp_path / "www"
    root.mkdir()
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *args: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_download_verifies_md5_and_caches(torch_home, server, caplog):
    root, base = server
    payload = net(layer("conv1", [blob(np.arange(6, dtype=np.float32))]))
    (root / "net.caffemodel").write_bytes(payload)
    md5 = hashlib.md5(payload).hexdigest()

    with pytest.raises(PipelineError, match=f"MD5 is {md5}, expected {'0' * 32}"):
        fetch_caffemodel(f"{base}/net.caffemodel", "0" * 32)
    assert not torch_home.exists() or not any(torch_home.iterdir())  # nothing half-written left

    path = fetch_caffemodel(f"{base}/net.caffemodel", md5)
    assert path == torch_home / "net.caffemodel" and path.read_bytes() == payload
    assert [p.name for p in torch_home.iterdir()] == ["net.caffemodel"]

    (root / "net.caffemodel").unlink()  # cached: no request made
    assert fetch_caffemodel(f"{base}/net.caffemodel", md5) == path
    with pytest.raises(PipelineError, match="delete the file"):
        fetch_caffemodel(f"{base}/net.caffemodel", "f" * 32)

    with caplog.at_level(logging.WARNING):
        fetch_caffemodel(f"{base}/net.caffemodel", None)
    assert f"caffemodel_md5: {md5}" in caplog.text


def test_offline_download_names_file_and_folder(torch_home):
    with socket.socket() as sock:  # a port with nothing listening
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(PipelineError) as err:
        fetch_caffemodel(f"http://127.0.0.1:{port}/VGG_CNN_M_2048.caffemodel", None)
    assert f"place VGG_CNN_M_2048.caffemodel in {torch_home}" in str(err.value)
    assert not torch_home.exists() or not any(torch_home.iterdir())


def test_http_error_is_reported(torch_home, server):
    _, base = server
    with pytest.raises(PipelineError, match="HTTP Error 404"):
        fetch_caffemodel(f"{base}/VGG_CNN_M_2048.caffemodel", None)


@pytest.mark.slow
def test_build_model_downloads_and_converts(full_size, torch_home, server):
    path, blobs = full_size
    root, base = server
    (root / path.name).symlink_to(path)
    md5 = hashlib.md5(path.read_bytes()).hexdigest()
    raw = load_params("params.yaml")["models"]
    raw["vgg_m"].update(weights="imagenet", input_size=224, caffemodel_url=f"{base}/{path.name}", caffemodel_md5=md5)
    cfg = parse(ModelsConfig, raw, "models")
    model = build_model("vgg_m", cfg)
    assert (torch_home / path.name).is_file()
    np.testing.assert_array_equal(model.classifier.fc7.weight.detach().numpy(), blobs["fc7"][0])
    np.testing.assert_array_equal(model.features.conv1.weight.detach().numpy(), blobs["conv1"][0][:, ::-1])
    assert model.classifier.fc8.out_features == 7
