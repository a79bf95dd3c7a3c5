"""The ``models:`` section of params.yaml, typed."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

# The smallest crops whose feature maps survive to the classifier (pool5 at least 1x1).
MIN_INPUT_SIZE = {"alexnet": 63, "vgg_m": 41}

_MD5 = re.compile(r"[0-9a-f]{32}")


def _check_size(input_size: int, model: str) -> None:
    if input_size < MIN_INPUT_SIZE[model]:
        raise ValueError(f"input_size is {input_size}; {model} needs at least {MIN_INPUT_SIZE[model]} pixels")


@dataclass(frozen=True)
class AlexNetConfig:
    weights: Literal["imagenet", "none"]
    input_size: int

    def __post_init__(self) -> None:
        _check_size(self.input_size, "alexnet")


@dataclass(frozen=True)
class VggMConfig:
    weights: Literal["imagenet", "none"]
    input_size: int
    caffemodel_url: str
    caffemodel_md5: str | None  # None: accept any file and log its MD5

    def __post_init__(self) -> None:
        _check_size(self.input_size, "vgg_m")
        if self.caffemodel_md5 is not None and not _MD5.fullmatch(self.caffemodel_md5):
            raise ValueError(
                f"caffemodel_md5 {self.caffemodel_md5!r} is not 32 lower-case hex digits (or null to accept any file)")


@dataclass(frozen=True)
class ModelsConfig:
    alexnet: AlexNetConfig
    vgg_m: VggMConfig
