"""The pipeline's paths: the `vars` of dvc.yaml, where each is written once.

The stages get their paths as arguments from dvc.yaml's commands. Code that reads a run's
outputs from outside a stage (the grid report, the demo, predict's default model) takes them
from here, by the name dvc.yaml gives them, rather than spelling them again.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import yaml

from .errors import PipelineError

DVC_YAML = "dvc.yaml"   # relative to the repository root, where dvc and `make` run
_REFERENCE = re.compile(r"\$\{(\w+)\}")


class PipelinePaths(dict):
    """Name -> path, as dvc.yaml's `vars` write them; a name it lacks is a PipelineError
    naming the file."""

    def __init__(self, paths: dict[str, str], source: str | os.PathLike):
        super().__init__(paths)
        self.source = str(source)

    def __missing__(self, name: str) -> str:
        raise PipelineError(f"{self.source}: `vars` has no path named {name!r}; "
                            f"it names: {', '.join(self) or 'none'}")


def pipeline_paths(dvc_yaml: str | os.PathLike = DVC_YAML) -> PipelinePaths:
    """The paths of ``dvc_yaml``'s `vars` (its mappings; a `vars` entry naming a file of values is
    not one of the pipeline's paths)."""
    path = Path(dvc_yaml)
    try:
        spec = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise PipelineError(f"{path}: not found; run this from the repository root, whose dvc.yaml "
                            f"names the pipeline's paths") from None
    blocks = (spec.get("vars") or []) if isinstance(spec, dict) else []
    return PipelinePaths({k: str(v) for block in blocks if isinstance(block, dict) for k, v in block.items()},
                         path)


def fill(text: str, paths: dict[str, str]) -> str:
    """``text`` with every ``${name}`` of ``paths`` filled in, as DVC does; the others (params
    keys, ``${item}``) are left as written."""
    return _REFERENCE.sub(lambda m: paths.get(m.group(1), m.group(0)), text)
