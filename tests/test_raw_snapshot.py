"""Raw inputs that change while a stage reads them stop the stage before it writes anything;
the default raw-data folders (a README until the data is put there) are read like the data."""
from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from staged_fer.cli import run_stage
from staged_fer.params import section
from staged_fer.data.fer_source import fetch
from staged_fer.data.fer_source.fer_params import FerConfig
from staged_fer.data.fer_source.fetch import fetch_fer
from staged_fer.data.raw_snapshot import check_unchanged, snapshot
from staged_fer.errors import PipelineError
from tests.params_baseline import baseline_params
from tests.test_fer_source import assert_nothing_written, fer_csv


def tree(root: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return root


@pytest.mark.parametrize("change,words", [
    (lambda r: (r / "Val/Sad/new.png").write_bytes(b"x"), "Val/Sad/new.png was added"),
    (lambda r: (r / "Train/Happy/a.png").unlink(), "Train/Happy/a.png was removed"),
    (lambda r: (r / "Train/Happy/a.png").write_bytes(b"other"), "Train/Happy/a.png was changed"),
    # same size, bytes replaced by a rename (as `cp` to a temporary name and `mv` do): new inode
    (lambda r: ((r / "b.tmp").write_bytes(b"BBB"), os.replace(r / "b.tmp", r / "Val/Sad/b.png")), "Val/Sad/b.png was changed"),
])
def test_a_changed_tree_is_named_with_the_key_and_the_file(tmp_path, change, words):
    root = tree(tmp_path / "SFEW", {"Train/Happy/a.png": b"aaaa", "Val/Sad/b.png": b"bbb"})
    before = snapshot(root)
    check_unchanged(root, before, "target.root")          # nothing changed: no error
    change(root)
    with pytest.raises(PipelineError, match=rf"^`target.root`: .*{words} while this stage read it"):
        check_unchanged(root, before, "target.root")


@pytest.fixture
def cfg() -> FerConfig:
    return replace(section(baseline_params(), "fer", FerConfig), source="file", md5=None)


def test_the_default_fer_folder_reads_its_one_file_and_names_the_key_when_empty(tmp_path, cfg):
    folder = tree(tmp_path / "fer2013", {"README.md": b"# FER-2013 goes here\n"})
    out = tmp_path / "raw" / "fer2013.csv", tmp_path / "raw" / "fer2013.meta.json"
    with pytest.raises(PipelineError, match=rf"^`fer.path`: no FER-2013 file in folder {folder}"):
        fetch_fer(replace(cfg, path=str(folder)), *out, seed=0)
    assert_nothing_written(*out)
    (folder / "fer2013.csv").write_bytes(fer_csv())
    meta = fetch_fer(replace(cfg, path=str(folder)), *out, seed=0)
    assert meta["rows"] == 6 and out[0].read_bytes() == fer_csv()
    (folder / "icml_face_data.csv").write_bytes(b"")
    with pytest.raises(PipelineError, match="holds several files .*fer2013.csv, icml_face_data.csv"):
        fetch_fer(replace(cfg, path=str(folder)), tmp_path / "again.csv", tmp_path / "again.json", seed=0)


def test_a_fer_file_replaced_while_read_writes_nothing(tmp_path, cfg, monkeypatch):
    src = tmp_path / "fer2013.csv"
    src.write_bytes(fer_csv())
    real = fetch.write_canonical_csv

    def read_then_replace(path, out, md5):
        found = real(path, out, md5)
        src.write_bytes(fer_csv(n=7))
        return found

    monkeypatch.setattr(fetch, "write_canonical_csv", read_then_replace)
    out = tmp_path / "raw" / "fer2013.csv", tmp_path / "raw" / "fer2013.meta.json"
    with pytest.raises(PipelineError, match=r"^`fer.path`: .*fer2013.csv was changed while this stage read it"):
        fetch_fer(replace(cfg, path=str(src)), *out, seed=0)
    assert_nothing_written(*out)


def test_align_stops_before_writing_when_the_tree_changes_meanwhile(tmp_path, monkeypatch, capsys):
    from tests.test_align_stage import _stage

    stage = _stage()
    root = tree(tmp_path / "SFEW", {"Train/Happy/a.png": b"a", "Val/Sad/b.png": b"b"})
    params = baseline_params()
    params["target"].update(source="dir", root=str(root))
    params["align"]["landmarks"] = "dlib"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))

    def align_while_a_photo_arrives(*args):
        (root / "Val" / "Sad" / "late.png").write_bytes(b"c")
        return None, None   # the stage must stop before it uses these

    monkeypatch.setattr(stage, "_align", align_while_a_photo_arrives)
    out = tmp_path / "out"
    argv = ["--params", str(tmp_path / "params.yaml"), "--out", str(out / "target.npz"), "--log", str(out / "log.csv"),
            "--reports", str(out / "reports"), "--metrics", str(out / "align.json")]
    assert run_stage(stage.main, argv) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: `target.root`: ") and "late.png was added" in err
    assert not out.exists()
