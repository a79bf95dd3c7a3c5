"""The align params travel with the faces: target.npz -> split files -> checkpoints."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from faces_samples import align_config
from staged_fer.params import read_stage_params
from staged_fer.data.splits import SplitsParams, build_split, load_split, save_split
from staged_fer.io import save_npz
from staged_fer.errors import PipelineError
from staged_fer.faces.record import align_config_from_record, align_record, align_record_json
from tests.params_baseline import baseline_params


def test_record_leaves_out_how_the_aligner_runs_and_round_trips():
    cfg = align_config(workers=3)
    record = align_record(cfg)
    assert "workers" not in record and record["detector"]["min_size"] == 24
    assert align_record(dataclasses.replace(cfg, workers=0)) == record
    assert align_config_from_record(json.loads(align_record_json(cfg)), "x.pt", workers=3) == cfg


def test_a_record_that_no_longer_fits_is_one_line_naming_the_file():
    record = {**align_record(align_config()), "shear": 0.35}
    with pytest.raises(PipelineError, match=r"^m\.pt: the recorded align params do not fit .*`align\.shear`"):
        align_config_from_record(record, "m.pt", workers=1)


def _data():
    rng = np.random.default_rng(0)
    usage = np.array(["Training", "PublicTest", "PrivateTest"] * 4)
    fer = {"images": rng.integers(0, 256, (12, 48, 48), dtype=np.uint8), "labels": np.arange(12) % 7,
           "usage": usage}
    split = np.array(["Train"] * 7 + ["Val"] * 7)
    target = {"images": rng.integers(0, 256, (14, 32, 32), dtype=np.uint8), "labels": np.arange(14) % 7,
              "split": split, "outcome": np.array(["aligned"] * 14), "align": np.array(align_record_json(align_config()))}
    return fer, target


@pytest.mark.parametrize("scheme, carries", [("fer28", False), ("fer32", False), ("fer32_target", True),
                                             ("target", True), ("none", True)])
def test_splits_carry_the_record_when_their_model_meets_aligned_faces(tmp_path, scheme, carries):
    fer, target = _data()
    schemes = read_stage_params(baseline_params(), SplitsParams).schemes
    split = build_split(scheme, schemes.get(scheme), {"fer": fer, "target": target})
    sources = {"fer": tmp_path / "fer.npz", "target": tmp_path / "target.npz"}
    save_npz(sources["fer"], **fer)
    save_npz(sources["target"], **target)
    save_split(tmp_path / "s", split, sources)
    loaded = load_split(tmp_path / "s")
    assert loaded.align == (str(target["align"]) if carries else "")
    # An target.npz written before the record existed gives splits without it.
    del target["align"]
    assert build_split(scheme, schemes.get(scheme), {"fer": fer, "target": target}).align == ""
