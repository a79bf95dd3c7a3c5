"""What every model's params section shares: ``models.<name>.weights`` and ``input_size``."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

Weights = Literal["imagenet", "none"]   # imagenet: the model's pretrained weights | none: He-normal random init


def check_input_size(input_size: int, model: str, minimum: int) -> None:
    """``minimum`` is the smallest crop whose feature maps survive to the classifier."""
    if input_size < minimum:
        raise ValueError(f"input_size is {input_size}; {model} needs at least {minimum} pixels")


@dataclass(frozen=True)
class WeightsAndSize:
    """The whole params section of a network that needs nothing else (torchvision's); a
    subclass names the model and the smallest input its feature maps survive."""
    weights: Weights
    input_size: int
    model: ClassVar[str]
    min_input_size: ClassVar[int]

    def __post_init__(self) -> None:
        check_input_size(self.input_size, self.model, self.min_input_size)
