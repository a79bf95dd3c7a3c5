"""ImageNet weights that torchvision publishes: cached by torch.hub, one clear error offline."""
from __future__ import annotations

import pickle
import urllib.error
from pathlib import Path
from urllib.parse import urlparse

import torch
from torch import nn
from torchvision.models import WeightsEnum

from ..errors import PipelineError
from .init import he_init
from .input_spec import InputSpec


def cache_file(weights: WeightsEnum) -> Path:
    """Where torch.hub keeps (or looks for) the weights file; TORCH_HOME moves it."""
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(weights.url).path).name


def imagenet_input_spec(weights: WeightsEnum, size: int) -> InputSpec:
    """The normalisation the weights were trained with (RGB in [0, 1], then mean and std),
    restated in 0..255 units for the uint8 input path."""
    transform = weights.transforms()
    return InputSpec(size=size, mean=tuple(255.0 * m for m in transform.mean),
                     std=tuple(255.0 * s for s in transform.std), channel_order="RGB")


def initialise(model: nn.Module, weights: WeightsEnum, name: str, imagenet: bool) -> nn.Module:
    """``model`` with its ImageNet ``weights`` (``imagenet``), else He-normal random init."""
    if imagenet:
        model.load_state_dict(state_dict(weights, name))
    else:
        he_init(model)
    return model


def state_dict(weights: WeightsEnum, model: str) -> dict[str, torch.Tensor]:
    """The weights through torchvision's API: from the cache, else downloaded once (hash checked)."""
    path = cache_file(weights)
    cached = path.is_file()
    try:
        return weights.get_state_dict(progress=True, check_hash=True, weights_only=True)
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        if cached:
            raise PipelineError(f"{path}: cannot read the cached {model} weights ({exc}); delete the file and rerun") from None
        reason = exc if isinstance(exc, urllib.error.HTTPError) else getattr(exc, "reason", exc)
        raise PipelineError(
            f"cannot download the {model} ImageNet weights from {weights.url} ({reason}); to run without it, place "
            f"{path.name} in {path.parent} (or set TORCH_HOME to a folder whose hub/checkpoints holds it), "
            f"or set models.{model}.weights: none") from None
    except (RuntimeError, pickle.UnpicklingError, EOFError, ValueError) as exc:
        if cached:  # a file torch.load cannot read
            raise PipelineError(f"{path}: the cached {model} weights are corrupt ({exc}); delete the file and rerun") from None
        # torch.hub's check_hash failed and it removed the download
        raise PipelineError(f"{weights.url}: the downloaded {model} weights are corrupt ({exc}); rerun") from None
