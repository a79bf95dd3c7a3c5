"""The initialisation of networks trained from scratch (`models.<name>.weights: none`)."""
from __future__ import annotations

from torch import nn


def he_init(model: nn.Module) -> None:
    """He-normal convolutions and the small Gaussian Caffe used for fully connected layers.

    Without batch normalisation, PyTorch's default init (uniform, scaled for a=sqrt(5)) shrinks
    the signal layer by layer through the ReLUs: AlexNet then stays at the majority class for
    many epochs. This init keeps activations alive, as in Caffe's and torchvision's VGG recipes.
    Layers without a bias (the convolutions before a batch norm, as in ResNet) keep none, and
    batch norms keep their identity start (weight 1, bias 0).
    """
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, 0.0, 0.01)
        elif isinstance(module, nn.modules.batchnorm._NormBase) and module.affine:
            nn.init.ones_(module.weight)
        else:
            continue
        if module.bias is not None:
            nn.init.zeros_(module.bias)
