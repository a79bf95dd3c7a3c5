"""The `fer` section of params.yaml."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ...io import MD5_HEX


@dataclass(frozen=True)
class FerSyntheticConfig:
    train: int
    public_test: int
    private_test: int

    def __post_init__(self) -> None:
        for name in ("train", "public_test", "private_test"):
            if getattr(self, name) < 1:
                raise ValueError(f"`synthetic.{name}` must be at least 1, got {getattr(self, name)}")


@dataclass(frozen=True)
class FerConfig:
    """The `fer` section of params.yaml."""
    source: Literal["file", "url", "kaggle", "synthetic"]
    path: str | None
    url: str | None
    kaggle_competition: str
    md5: str | None
    synthetic: FerSyntheticConfig
    # Read by decode_fer (staged_fer.data.ferplus.FerLabelsConfig), validated here too.
    labels: Literal["fer", "ferplus"]
    ferplus_path: str

    def __post_init__(self) -> None:
        if self.md5 is not None and self.md5 != "canonical" and not MD5_HEX.fullmatch(self.md5):
            raise ValueError(f"`md5` is {self.md5!r}; expected `canonical`, a 32-digit hex MD5 or null")
