"""What every model's params section shares: ``models.<name>.weights`` and ``input_size``."""
from __future__ import annotations

from typing import Literal

Weights = Literal["imagenet", "none"]   # imagenet: the model's pretrained weights | none: He-normal random init


def check_input_size(input_size: int, model: str, minimum: int) -> None:
    """``minimum`` is the smallest crop whose feature maps survive to the classifier."""
    if input_size < minimum:
        raise ValueError(f"input_size is {input_size}; {model} needs at least {minimum} pixels")
