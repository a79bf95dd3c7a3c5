"""The `auto | cpu | cuda` choice that training and evaluation share."""
from __future__ import annotations

import torch

from .errors import PipelineError


def resolve_device(choice: str, key: str) -> torch.device:
    """The device params key ``key`` asks for; `auto` is CUDA when one is visible."""
    cuda = torch.cuda.is_available()
    if choice == "cuda" and not cuda:
        raise PipelineError(f"params.yaml: `{key}` is 'cuda' but no CUDA device is available "
                            "(set it to auto or cpu)")
    return torch.device("cuda" if cuda and choice != "cpu" else "cpu")
