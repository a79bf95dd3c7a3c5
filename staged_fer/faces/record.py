"""The `align` params a set of faces was prepared with, as a record that travels with them.

`align_target` stores the record in the face store's index, `build_splits` carries it into
the splits and training copies it into the checkpoint, so a model can later be shown faces
prepared exactly as its training and validation faces were (``staged_fer.predict``) without
reading a params.yaml that may have moved on since. Knobs that say how the aligner runs
(processes, device) are left out: they do not change a face, and recording them would make a
change of core count look like new data to DVC.
"""
from __future__ import annotations

import dataclasses
import json
from typing import Any, Mapping

from ..params import parse
from ..errors import PipelineError
from .align_params import AlignConfig

RUNTIME_KEYS = ("workers", "device")


def align_record(cfg: AlignConfig) -> dict[str, Any]:
    """The params of ``cfg`` that decide what a face looks like, as plain JSON values."""
    return {k: v for k, v in dataclasses.asdict(cfg).items() if k not in RUNTIME_KEYS}


def align_record_json(cfg: AlignConfig) -> str:
    """The record as canonical JSON text (sorted keys), the form stored in arrays and splits."""
    return json.dumps(align_record(cfg), sort_keys=True)


def align_config_from_record(record: Mapping[str, Any], where: str, **runtime: Any) -> AlignConfig:
    """An AlignConfig from a stored record plus the runtime knobs (``workers=...``) the caller picks.

    ``where`` names the record's file in the error raised when the record no longer fits this
    code's `align` section (a key added or removed since it was written).
    """
    if not isinstance(record, Mapping):
        raise PipelineError(f"{where}: the recorded align params are not a mapping")
    fields = {f.name: f for f in dataclasses.fields(AlignConfig)}
    # Runtime knobs the caller leaves out take the field's default where it has one.
    defaults = {k: fields[k].default for k in RUNTIME_KEYS
                if k in fields and fields[k].default is not dataclasses.MISSING}
    values = {**record, **defaults, **{k: v for k, v in runtime.items() if k in fields}}
    try:
        return parse(AlignConfig, values, "align")
    except PipelineError as exc:
        raise PipelineError(f"{where}: the recorded align params do not fit this version's `align` section "
                            f"({str(exc).removeprefix('params.yaml: ')}); rerun `dvc repro` to rebuild it") from None
