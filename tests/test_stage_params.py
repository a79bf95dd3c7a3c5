"""Each stage parses its params once into its own typed view, and dvc.yaml lists what it reads.

The views are parsed from the committed params.yaml (see params_baseline). A stage that read a
key dvc.yaml does not list would not rerun when it changes; one that listed a key it never
reads would rerun for nothing.
"""
import dataclasses
import importlib.util
import sys
import typing
from pathlib import Path

import pytest
import yaml

from staged_fer.params import read_stage_params, section_keys
from staged_fer.data.splits import SplitsParams
from staged_fer.errors import PipelineError
from staged_fer.evaluation.checkpoints import EvaluateParams
from staged_fer.models import MODEL_NAMES
from staged_fer.training.phase import SharedParams, read_params
from tests.params_baseline import baseline_params

ROOT = Path(__file__).resolve().parents[1]


def _stage_module(name: str):
    spec = importlib.util.spec_from_file_location(f"stage_{name}", ROOT / "stages" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


VIEWS = {
    "download_fer": lambda: _stage_module("download_fer").DownloadParams,
    "decode_fer": lambda: _stage_module("decode_fer").DecodeParams,
    "align_target": lambda: _stage_module("align_target").AlignParams,
    "build_splits": lambda: SplitsParams,
    "train_phase1": lambda: SharedParams,
    "train_phase2": lambda: SharedParams,
    "evaluate": lambda: EvaluateParams,
}
# Keys a view reads besides its dataclass fields: each training phase's own section.
OWN_SECTION = {"train_phase1": {"phase1"}, "train_phase2": {"phase2"}}
# Keys a view checks but whose values do not change the stage's output: download_fer checks
# the whole `fer` section, so a typo fails at the first stage, but only decode_fer uses these.
CHECKED_ONLY = {"download_fer": {"fer.labels", "fer.ferplus_path"}}


def _keys_read(cls, checked_only: set[str]) -> set[str]:
    """Top-level keys, or `section.key` for a section read in part (or read whole but with
    keys it only checks)."""
    hints = typing.get_type_hints(cls)
    keys = set()
    for f in dataclasses.fields(cls):
        key, part = f.name, section_keys(f, hints[f.name])
        if part is None and any(c.startswith(f"{key}.") for c in checked_only):
            part = tuple(g.name for g in dataclasses.fields(hints[f.name]))
        keys |= {f"{key}.{k}" for k in part} if part is not None else {key}
    return keys


@pytest.mark.parametrize("stage", sorted(VIEWS))
def test_dvc_yaml_lists_exactly_what_each_stage_reads(stage):
    listed = set(yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"][stage]["params"])
    cls = VIEWS[stage]()
    read_stage_params(baseline_params(), cls)   # the shipped params parse
    checked_only = CHECKED_ONLY.get(stage, set())
    read = _keys_read(cls, checked_only) | OWN_SECTION.get(stage, set())
    assert checked_only <= read
    assert read - checked_only == listed


def test_training_params_keep_the_sections_they_read(tmp_path):
    params = baseline_params()
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    p = read_params(path, "phase2")
    assert set(p.raw) == {"seed", "model", "models", "input", "runtime", "phase2"}
    assert p.runtime.devices == params["runtime"]["devices"] and p.phase.epochs == params["phase2"]["epochs"]


@pytest.mark.parametrize("cls", [SharedParams, EvaluateParams])
def test_an_unknown_model_lists_the_registered_ones(cls):
    params = {**baseline_params(), "model": "resnet50"}
    with pytest.raises(PipelineError) as err:
        read_stage_params(params, cls)
    assert "`model` is 'resnet50'" in str(err.value)
    assert all(repr(name) in str(err.value) for name in MODEL_NAMES)


def test_an_unknown_scheme_lists_the_defined_ones():
    params = baseline_params()
    params["phase2"]["data"] = "raf_db"
    with pytest.raises(PipelineError, match=r"`phase2.data` is 'raf_db'; expected one of: fer28, fer32, "
                                            r"fer32_target, target, none"):
        read_stage_params(params, SplitsParams)


def test_a_scheme_part_no_source_registers_is_refused():
    params = baseline_params()
    params["schemes"]["target"]["val"] = ["target.Test"]
    with pytest.raises(PipelineError, match=r"schemes.target.*target.Test.*not registered.*fer.Training"):
        read_stage_params(params, SplitsParams)


def test_a_part_view_reads_only_its_keys_and_names_missing_ones():
    decode = _stage_module("decode_fer").DecodeParams
    params = baseline_params()
    params["fer"]["source"] = "not checked here"      # download_fer's key: decode_fer neither reads nor checks it
    assert read_stage_params(params, decode).fer.labels == "fer"
    del params["fer"]["ferplus_path"]
    with pytest.raises(PipelineError, match=r"missing key `fer.ferplus_path`"):
        read_stage_params(params, decode)


def test_a_missing_or_mistyped_top_level_key_is_named():
    params = baseline_params()
    del params["input"]
    with pytest.raises(PipelineError, match=r"missing key `input`"):
        read_stage_params(params, EvaluateParams)
    params = {**baseline_params(), "seed": "0"}
    with pytest.raises(PipelineError, match=r"`seed` must be an integer"):
        read_stage_params(params, EvaluateParams)
    params = baseline_params()
    params["runtime"]["devices"] = 0   # a section's own check names the section
    with pytest.raises(PipelineError, match=r"`runtime`: devices must be >= 1"):
        read_stage_params(params, SharedParams)
