"""torchvision's AlexNet (the one-tower variant, 61.1M parameters) and its ImageNet weights."""
from __future__ import annotations

import pickle
import urllib.error
from pathlib import Path
from urllib.parse import urlparse

import torch
from torch import nn
from torchvision.models import AlexNet, AlexNet_Weights

from ..errors import PipelineError
from .init import he_init
from .input_spec import InputSpec

WEIGHTS = AlexNet_Weights.IMAGENET1K_V1

# torchvision's weights are trained on RGB in [0, 1] normalised with the ImageNet statistics;
# here the same numbers in 0..255 units.
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


def alexnet_input_spec(size: int) -> InputSpec:
    return InputSpec(size=size, mean=tuple(255.0 * m for m in _IMAGENET_MEAN),
                     std=tuple(255.0 * s for s in _IMAGENET_STD), channel_order="RGB")


def weights_cache_file() -> Path:
    """Where torch.hub keeps (or looks for) the IMAGENET1K_V1 file; TORCH_HOME moves it."""
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(WEIGHTS.url).path).name


def imagenet_state_dict() -> dict[str, torch.Tensor]:
    """IMAGENET1K_V1 through torchvision's weights API: from the cache, else downloaded once."""
    path = weights_cache_file()
    cached = path.is_file()
    try:
        return WEIGHTS.get_state_dict(progress=True, check_hash=True, weights_only=True)
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        if cached:
            raise PipelineError(f"{path}: cannot read the cached AlexNet weights ({exc}); delete the file and rerun") from None
        reason = exc if isinstance(exc, urllib.error.HTTPError) else getattr(exc, "reason", exc)
        raise PipelineError(
            f"cannot download the AlexNet ImageNet weights from {WEIGHTS.url} ({reason}); to run without it, place "
            f"{path.name} in {path.parent} (or set TORCH_HOME to a folder whose hub/checkpoints holds it), "
            f"or set models.alexnet.weights: none") from None
    except (RuntimeError, pickle.UnpicklingError, EOFError, ValueError) as exc:
        if cached:  # a file torch.load cannot read
            raise PipelineError(f"{path}: the cached AlexNet weights are corrupt ({exc}); delete the file and rerun") from None
        # torch.hub's check_hash failed and it removed the download
        raise PipelineError(f"{WEIGHTS.url}: the downloaded AlexNet weights are corrupt ({exc}); rerun") from None


def build_alexnet(num_classes: int, imagenet: bool) -> nn.Module:
    model = AlexNet()
    if imagenet:
        model.load_state_dict(imagenet_state_dict())
    else:
        he_init(model)
    old = model.classifier[6]
    model.classifier[6] = nn.Linear(old.in_features, num_classes)
    return model
