"""The table of models: every module imported on the marked line below registers its ``ENTRY``.

The imports are plain static ones, so a reader (or a tool that follows the import graph)
sees every model file; adding a network is its module, its params section under ``models:``
and its name on that one line. The table lists the paper's networks first, then the others,
each group by name: the order of the grid, the report and error messages.
"""
from __future__ import annotations

import dataclasses
import types
from typing import Any, Literal, Mapping

from ..errors import PipelineError
from .entry import ModelEntry

from . import alexnet, resnet18, vgg_m  # the registered models, one module each


def _registered(namespace: Mapping[str, Any]) -> tuple[ModelEntry, ...]:
    entries = [value.ENTRY for value in namespace.values()
               if isinstance(value, types.ModuleType) and isinstance(getattr(value, "ENTRY", None), ModelEntry)]
    return tuple(sorted(entries, key=lambda e: (not e.in_paper, e.name)))


ENTRIES = _registered(dict(globals()))
MODELS: dict[str, ModelEntry] = {e.name: e for e in ENTRIES}
MODEL_NAMES = tuple(MODELS)
PAPER_MODELS = tuple(e.name for e in ENTRIES if e.in_paper)

# The value of params.yaml's `model`: parsing a stage's params rejects any other name, listing these.
ModelName = Literal[MODEL_NAMES]

# params.yaml's `models:` section: one field per registered model, typed by its module.
ModelsConfig = dataclasses.make_dataclass("ModelsConfig", [(e.name, e.config) for e in ENTRIES], frozen=True)
ModelsConfig.__module__ = __name__


def entry(name: Any, key: str = "model") -> ModelEntry:
    """The registered model ``name``; PipelineError listing the registered ones otherwise."""
    if not isinstance(name, str) or name not in MODELS:
        raise PipelineError(f"params.yaml: `{key}` is {name!r}; expected one of: {', '.join(MODEL_NAMES)}")
    return MODELS[name]
