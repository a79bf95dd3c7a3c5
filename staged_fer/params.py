"""Typed params: one frozen dataclass per params.yaml section.

Parsing fails at once, naming the key, on an unknown key, a missing key or a value of the
wrong type, so a typo in params.yaml or in ``dvc exp run -S`` never runs silently with a default.
Every field is required: params.yaml is the one place where knobs have values.

Each stage reads its params once, at its start, with ``read_stage_params`` into one frozen
dataclass of its own (``DecodeParams``, ``SplitsParams``, ``EvaluateParams``...): one field
per top-level key it reads, typed by that section's dataclass, so everything after that point
works on validated values and no code reads the raw mapping. The fields are the keys listed
for the stage in dvc.yaml (tests/test_stage_params.py checks that the two agree).
"""
from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, Mapping, TypeVar

import yaml

from .errors import PipelineError

T = TypeVar("T")


def load_params(path: str | Path = "params.yaml") -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise PipelineError(f"{path}: params file not found (run from the repository root or pass --params)")
    with open(path) as fh:
        params = yaml.safe_load(fh)
    if not isinstance(params, dict):
        raise PipelineError(f"{path}: expected a mapping of sections at the top level")
    return params


def parse(cls: type[T], raw: Any, where: str) -> T:
    """Build dataclass ``cls`` from mapping ``raw``; ``where`` names the params key in errors."""
    if not isinstance(raw, Mapping):
        raise PipelineError(f"params.yaml: `{where}` must be a mapping, got {type(raw).__name__}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(raw) - set(names))
    if unknown:
        raise PipelineError(f"params.yaml: unknown key `{where}.{unknown[0]}` (expected one of: {', '.join(names)})")
    missing = [n for n in names if n not in raw]
    if missing:
        raise PipelineError(f"params.yaml: missing key `{where}.{missing[0]}`")
    values = {name: _convert(hints[name], raw[name], f"{where}.{name}") for name in names}
    try:
        return cls(**values)
    except (ValueError, TypeError) as exc:
        raise PipelineError(f"params.yaml: `{where}`: {exc}") from None


def section_keys(f: dataclasses.Field, hint: Any) -> tuple[str, ...] | None:
    """The keys of a section a stage reads one by one (``metadata={"part": True}``), else None."""
    return tuple(g.name for g in dataclasses.fields(hint)) if f.metadata.get("part") else None


def read_stage_params(params: Mapping[str, Any], cls: type[T]) -> T:
    """A stage's params, parsed once into dataclass ``cls``.

    Each field of ``cls`` is a top-level key of params.yaml, by its name. A field whose
    metadata has ``part=True`` takes only the keys its dataclass names, for a stage that reads
    part of a section (its dvc.yaml params list those keys one by one). Unknown or missing keys
    and wrong types stop with the key named, like ``section``.
    """
    hints = typing.get_type_hints(cls)
    values = {}
    for f in dataclasses.fields(cls):
        key = f.name
        if key not in params:
            raise PipelineError(f"params.yaml: missing key `{key}`")
        raw = params[key]
        part = section_keys(f, hints[f.name])
        if part is not None:
            if not isinstance(raw, Mapping):
                raise PipelineError(f"params.yaml: `{key}` must be a mapping, got {type(raw).__name__}")
            raw = {k: raw[k] for k in part if k in raw}
        values[f.name] = _convert(hints[f.name], raw, key)
    try:
        return cls(**values)
    except (ValueError, TypeError) as exc:
        raise PipelineError(f"params.yaml: {exc}") from None


def section(params: Mapping[str, Any], name: str, cls: type[T]) -> T:
    if name not in params:
        raise PipelineError(f"params.yaml: missing section `{name}`")
    return parse(cls, params[name], name)


def _convert(hint: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if dataclasses.is_dataclass(hint):
        return parse(hint, value, where)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        others = [a for a in args if a is not type(None)]
        errors = []
        for arg in others:
            try:
                return _convert(arg, value, where)
            except PipelineError as exc:
                errors.append(str(exc))
        raise PipelineError(errors[0] if errors else f"params.yaml: `{where}` has an invalid value {value!r}")
    if origin is typing.Literal:
        if value not in args:
            raise PipelineError(
                f"params.yaml: `{where}` is {value!r}; expected one of: {', '.join(map(repr, args))}")
        return value
    if origin is dict:
        if not isinstance(value, Mapping):
            raise PipelineError(f"params.yaml: `{where}` must be a mapping, got {value!r}")
        key_hint, value_hint = args
        out = {}
        for k, v in value.items():
            # YAML reads folder names such as RAF-DB's 1..7 as integers.
            key = str(k) if key_hint is str and isinstance(k, int) and not isinstance(k, bool) else k
            out[_convert(key_hint, key, f"{where}.{k}")] = _convert(value_hint, v, f"{where}.{k}")
        return out
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise PipelineError(f"params.yaml: `{where}` must be a list, got {value!r}")
        if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(args[0], v, f"{where}[{i}]") for i, v in enumerate(value))
        if origin is tuple:
            if len(args) != len(value):
                raise PipelineError(f"params.yaml: `{where}` must have {len(args)} items, got {len(value)}")
            return tuple(_convert(a, v, f"{where}[{i}]") for i, (a, v) in enumerate(zip(args, value)))
        return [_convert(args[0], v, f"{where}[{i}]") for i, v in enumerate(value)] if args else list(value)
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise PipelineError(f"params.yaml: `{where}` must be a number, got {value!r}")
        return float(value)
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise PipelineError(f"params.yaml: `{where}` must be an integer, got {value!r}")
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise PipelineError(f"params.yaml: `{where}` must be true or false, got {value!r}")
        return value
    if hint is str:
        if not isinstance(value, str):
            raise PipelineError(f"params.yaml: `{where}` must be a string, got {value!r}")
        return value
    if hint is Any:
        return value
    raise TypeError(f"unsupported params type {hint!r} at {where}")

