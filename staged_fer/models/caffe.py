"""VGG-CNN-M-2048's ImageNet weights: fetch the Caffe model and convert it, without Caffe.

A .caffemodel is a serialised ``NetParameter`` protobuf. Only a few fields matter here, so
they are read straight from the protobuf wire format (varints and length-delimited fields)
instead of depending on caffe or on code generated from caffe.proto:

- NetParameter: ``layer`` (100, LayerParameter) or the legacy ``layers`` (2, V1LayerParameter)
- LayerParameter: ``name`` (1), ``blobs`` (7, BlobProto)
- V1LayerParameter: ``name`` (4), ``blobs`` (6), or a nested V0 ``layer`` (1: ``name`` 1, ``blobs`` 50)
- BlobProto: ``shape`` (7, BlobShape with ``dim`` 1), legacy ``num``/``channels``/``height``/
  ``width`` (1-4), ``data`` (5, float32) or ``double_data`` (8), packed or not
"""
from __future__ import annotations

import hashlib
import logging
import sys
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from ..errors import PipelineError
from ..io import atomic_path

log = logging.getLogger(__name__)

# Caffe layer name -> the VggM module that takes its blobs (weight, bias). fc8 is the
# 1000-way ImageNet classifier, replaced by a fresh head.
VGG_M_LAYERS = {
    "conv1": "features.conv1", "conv2": "features.conv2", "conv3": "features.conv3",
    "conv4": "features.conv4", "conv5": "features.conv5", "fc6": "classifier.fc6", "fc7": "classifier.fc7",
}

_VARINT, _FIXED64, _LEN, _FIXED32 = 0, 1, 2, 5
_CHUNK = 1 << 20


class CaffeFormatError(ValueError):
    """The bytes are not the protobuf that the reader expects."""


def _varint(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= end:
            raise CaffeFormatError(f"truncated varint at byte {pos}")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
        if shift >= 70:
            raise CaffeFormatError(f"varint longer than 10 bytes at byte {pos}")


def _fields(buf: bytes, start: int, end: int):
    """Yield (field number, wire type, value) of one message; length-delimited values and
    fixed-width ones come as (start, end) byte ranges, varints as ints."""
    pos = start
    while pos < end:
        tag_at = pos
        tag, pos = _varint(buf, pos, end)
        field, wire = tag >> 3, tag & 7
        if field == 0:
            raise CaffeFormatError(f"field number 0 at byte {tag_at}")
        if wire == _VARINT:
            value, pos = _varint(buf, pos, end)
        elif wire in (_FIXED64, _FIXED32):
            width = 8 if wire == _FIXED64 else 4
            value, pos = (pos, pos + width), pos + width
        elif wire == _LEN:
            length, pos = _varint(buf, pos, end)
            value, pos = (pos, pos + length), pos + length
        else:
            raise CaffeFormatError(f"unsupported wire type {wire} (field {field}) at byte {tag_at}")
        if pos > end:
            raise CaffeFormatError(f"field {field} at byte {tag_at} runs past the end of its message (byte {end})")
        yield field, wire, value


def _packed_varints(buf: bytes, start: int, end: int) -> list[int]:
    values, pos = [], start
    while pos < end:
        value, pos = _varint(buf, pos, end)
        values.append(value)
    return values


def _numbers(buf: bytes, wire: int, value, dtype: str) -> np.ndarray:
    start, end = value
    itemsize = np.dtype(dtype).itemsize
    if wire == _LEN and (end - start) % itemsize:
        raise CaffeFormatError(f"packed {dtype} data at byte {start} is {end - start} bytes, not a multiple of {itemsize}")
    return np.frombuffer(buf, dtype=dtype, count=(end - start) // itemsize, offset=start)


def _blob(buf: bytes, start: int, end: int) -> np.ndarray:
    shape: list[int] | None = None
    legacy: dict[int, int] = {}
    chunks: list[np.ndarray] = []
    for field, wire, value in _fields(buf, start, end):
        if field in (1, 2, 3, 4) and wire == _VARINT:
            legacy[field] = value
        elif field == 5 and wire in (_LEN, _FIXED32):
            chunks.append(_numbers(buf, wire, value, "<f4"))
        elif field == 8 and wire in (_LEN, _FIXED64):
            chunks.append(_numbers(buf, wire, value, "<f8").astype(np.float32))
        elif field == 7 and wire == _LEN:
            shape = []
            for f, w, v in _fields(buf, *value):
                if f == 1 and w == _VARINT:
                    shape.append(v)
                elif f == 1 and w == _LEN:
                    shape.extend(_packed_varints(buf, *v))
    data = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
    if shape is None:
        # Caffe reads legacy blobs as 4-D (num, channels, height, width), missing fields as 0.
        shape = [legacy.get(i, 0) for i in (1, 2, 3, 4)] if legacy else [data.size]
    if int(np.prod(shape)) != data.size:
        raise CaffeFormatError(f"blob at byte {start} has shape {tuple(shape)} but {data.size} values")
    return data.reshape(shape).astype(np.float32, copy=True)


def _layer(buf: bytes, start: int, end: int, name_field: int, blobs_field: int) -> tuple[str | None, list[np.ndarray]]:
    name, blobs = None, []
    for field, wire, value in _fields(buf, start, end):
        if wire != _LEN:
            continue
        if field == name_field:
            name = bytes(buf[value[0]:value[1]]).decode("utf-8", errors="replace")
        elif field == blobs_field:
            blobs.append(_blob(buf, *value))
        elif field == 1 and name_field == 4:  # a V0 layer nested in a V1 one
            v0_name, v0_blobs = _layer(buf, *value, name_field=1, blobs_field=50)
            name = name or v0_name
            blobs.extend(v0_blobs)
    return name, blobs


def parse_caffemodel(buf: bytes) -> dict[str, list[np.ndarray]]:
    """Layer name -> its blobs (float32 arrays shaped as Caffe stores them), in file order."""
    layers: dict[str, list[np.ndarray]] = {}
    for field, wire, value in _fields(buf, 0, len(buf)):
        if wire != _LEN or field not in (2, 100):
            continue
        name, blobs = _layer(buf, *value, name_field=1 if field == 100 else 4, blobs_field=7 if field == 100 else 6)
        if name is None:
            raise CaffeFormatError(f"layer at byte {value[0]} has no name")
        if not blobs:
            continue  # ReLU, pooling, dropout...: nothing to convert
        if name in layers:
            raise CaffeFormatError(f"two layers named {name!r} hold blobs")
        layers[name] = blobs
    if not layers:
        raise CaffeFormatError("no layer with blobs (is this a .caffemodel rather than a .prototxt or a web page?)")
    return layers


def read_caffemodel(path: str | Path) -> dict[str, list[np.ndarray]]:
    path = Path(path)
    try:
        return parse_caffemodel(path.read_bytes())
    except CaffeFormatError as exc:
        raise PipelineError(f"{path}: not a readable Caffe model: {exc}") from None
    except OSError as exc:
        raise PipelineError(f"{path}: cannot read the Caffe model ({exc})") from None


def vgg_m_state_dict(layers: dict[str, list[np.ndarray]], model: nn.Module, source: str | Path) -> dict[str, torch.Tensor]:
    """The VggM tensors below the head, from Caffe blobs; ``source`` names the file in errors.

    conv1's input channels are reversed: Caffe's model was trained on BGR, the project feeds
    RGB. fc6's (4096, 512*6*6) matrix needs no permutation: Caffe flattens pool5 as
    (channel, row, column), exactly as torch.flatten does an NCHW tensor.
    """
    params = dict(model.named_parameters())
    state: dict[str, torch.Tensor] = {}
    for caffe_name, module_name in VGG_M_LAYERS.items():
        if caffe_name not in layers:
            raise PipelineError(f"{source}: no layer {caffe_name!r} with weights (found: {', '.join(layers)}); "
                                f"is this VGG_CNN_M_2048.caffemodel?")
        blobs = layers[caffe_name]
        if len(blobs) != 2:
            raise PipelineError(f"{source}: layer {caffe_name!r} has {len(blobs)} blobs; expected weights and biases")
        for blob, kind in zip(blobs, ("weight", "bias")):
            target = params[f"{module_name}.{kind}"]
            if blob.size != target.numel():
                raise PipelineError(
                    f"{source}: layer {caffe_name!r} {kind} has shape {blob.shape} ({blob.size} values); "
                    f"VGG-CNN-M-2048 needs {tuple(target.shape)}; is this VGG_CNN_M_2048.caffemodel?")
            array = blob.reshape(tuple(target.shape))
            if caffe_name == "conv1" and kind == "weight":
                array = array[:, ::-1]
            state[f"{module_name}.{kind}"] = torch.from_numpy(np.ascontiguousarray(array))
    return state


def load_vgg_m_caffe(model: nn.Module, path: str | Path) -> None:
    """Copy conv1..fc7 of the Caffe model at ``path`` into ``model``; its head is left as is."""
    state = vgg_m_state_dict(read_caffemodel(path), model, path)
    missing, unexpected = model.load_state_dict(state, strict=False)
    assert not unexpected and all(k.startswith("classifier.fc8.") for k in missing), (missing, unexpected)


def caffemodel_cache_file(url: str) -> Path:
    name = Path(urlparse(url).path).name
    if not name:
        raise PipelineError(f"params.yaml: `models.vgg_m.caffemodel_url` {url!r} does not end in a file name")
    return Path(torch.hub.get_dir()) / "checkpoints" / name


def _md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _check_md5(actual: str, expected: str | None, path: Path, url: str) -> None:
    if expected is None:
        log.warning("%s: MD5 %s not verified; set models.vgg_m.caffemodel_md5: %s to pin it", path, actual, actual)
    elif actual != expected:
        raise PipelineError(f"{path}: MD5 is {actual}, expected {expected} (models.vgg_m.caffemodel_md5); "
                            f"delete the file to download {url} again, or fix the checksum")


def fetch_caffemodel(url: str, md5: str | None) -> Path:
    """The Caffe model in torch.hub's cache (TORCH_HOME), downloaded there once, checksum verified."""
    path = caffemodel_cache_file(url)
    if path.is_file():
        _check_md5(_md5(path), md5, path, url)
        return path
    try:
        with urllib.request.urlopen(url, timeout=60) as response, atomic_path(path) as tmp:
            total = int(response.headers.get("Content-Length") or 0) or None
            digest = hashlib.md5()
            with open(tmp, "wb") as fh, tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024,
                                            desc=path.name, file=sys.stderr, disable=None) as bar:
                while chunk := response.read(_CHUNK):
                    fh.write(chunk)
                    digest.update(chunk)
                    bar.update(len(chunk))
            if total is not None and tmp.stat().st_size != total:
                raise PipelineError(f"{url}: download stopped after {tmp.stat().st_size} of {total} bytes; rerun")
            _check_md5(digest.hexdigest(), md5, path, url)
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        reason = exc if isinstance(exc, urllib.error.HTTPError) else getattr(exc, "reason", exc)
        raise PipelineError(
            f"cannot download {url} ({reason}); to run without it, place {path.name} in {path.parent} (or set "
            f"TORCH_HOME to a folder whose hub/checkpoints holds it), or set models.vgg_m.weights: none") from None
    return path


def load_vgg_m_imagenet(model: nn.Module, url: str, md5: str | None) -> None:
    load_vgg_m_caffe(model, fetch_caffemodel(url, md5))
