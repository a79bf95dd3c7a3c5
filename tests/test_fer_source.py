"""download_fer: every source and layout, checksums, unsafe archives, interrupted downloads."""
from __future__ import annotations

import gzip
import hashlib
import http.server
import io
import json
import tarfile
import threading
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from staged_fer.cli import run_stage
from staged_fer.params import parse, section
from staged_fer.data.fer_decode import decode_fer_csv
from staged_fer.data.fer_source import kaggle_download
from staged_fer.data.fer_source.fer_params import FerConfig
from staged_fer.data.fer_source.fetch import fetch_fer
from staged_fer.data.fer_source.layouts import CANONICAL_MD5
from staged_fer.data.fer_source.meta import read_meta
from staged_fer.errors import PipelineError
from tests.params_baseline import baseline_params

ROOT = Path(__file__).resolve().parents[1]


def fer_csv(n: int = 6, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    usage = ("Training", "PublicTest", "PrivateTest")
    rows = [f"{rng.integers(0, 7)},{' '.join(map(str, rng.integers(0, 256, 2304)))},{usage[i % 3]}"
            for i in range(n)]
    return ("emotion,pixels,Usage\n" + "\n".join(rows) + "\n").encode()


def icml_of(canonical: bytes) -> bytes:
    """The same data in icml_face_data.csv's layout: `emotion, Usage, pixels`."""
    lines = canonical.decode().splitlines()
    out = ["emotion, Usage, pixels"]
    for line in lines[1:]:
        label, pixels, usage = line.split(",")
        out.append(f"{label},{usage},{pixels}")
    return ("\n".join(out) + "\n").encode()


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def tar_gz(path: Path, members: dict[str, bytes], links: dict[str, str] | None = None) -> Path:
    with tarfile.open(path, "w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            tf.addfile(info)
    return path


@pytest.fixture
def cfg() -> FerConfig:
    """The real `fer` section, pointed at files the tests make."""
    return section(baseline_params(), "fer", FerConfig)


@pytest.fixture
def out(tmp_path) -> tuple[Path, Path]:
    return tmp_path / "raw" / "fer2013.csv", tmp_path / "raw" / "fer2013.meta.json"


def assert_nothing_written(out_csv: Path, meta: Path) -> None:
    assert not out_csv.exists() and not meta.exists()
    leftovers = list(out_csv.parent.iterdir()) if out_csv.parent.exists() else []
    assert leftovers == [], f"temporary files left behind: {leftovers}"


# ----------------------------------------------------------------------------- params

@pytest.mark.parametrize("key,value,words", [
    ("source", "ftp", "`fer.source` is 'ftp'"),
    ("md5", "abc", "`fer`: `md5` is 'abc'"),
    ("md5", 5, "`fer.md5` must be a string"),
    ("colour", 1, "unknown key `fer.colour`"),
])
def test_bad_params_name_the_key(key, value, words):
    raw = dict(baseline_params()["fer"])
    raw[key] = value
    with pytest.raises(PipelineError, match=words.replace("(", r"\(").replace(")", r"\)")):
        parse(FerConfig, raw, "fer")


# ----------------------------------------------------------------------------- file source

@pytest.mark.parametrize("packing", ["csv", "csv.gz", "tar.gz", "zip", "icml.csv", "icml.zip"])
def test_file_source_every_packing_gives_the_canonical_csv(tmp_path, cfg, out, packing):
    data = fer_csv()
    shipped = icml_of(data) if packing.startswith("icml") else data
    src = tmp_path / f"input.{packing}"
    if packing in ("csv", "icml.csv"):
        src.write_bytes(shipped)
    elif packing == "csv.gz":
        src.write_bytes(gzip.compress(shipped))
    elif packing == "tar.gz":
        tar_gz(src, {"fer2013/README": b"readme", "fer2013/fer2013.csv": shipped})
    else:
        with zipfile.ZipFile(src, "w") as zf:
            zf.writestr("icml_face_data.csv" if packing == "icml.zip" else "fer2013.csv", shipped)
    meta = fetch_fer(replace(cfg, source="file", path=str(src), md5=md5(shipped)), *out, seed=0)
    assert out[0].read_bytes() == data
    assert meta == read_meta(out[1]) == {
        "source": "file", "origin": str(src), "file": "icml_face_data.csv" if "icml" in packing else "fer2013.csv",
        "md5": md5(shipped), "md5_expected": md5(shipped), "rows": 6, "synthetic": False}
    assert sorted(p.name for p in out[0].parent.iterdir()) == ["fer2013.csv", "fer2013.meta.json"]


def test_md5_null_accepts_and_records_what_it_saw(tmp_path, cfg, out):
    src = tmp_path / "fer2013.csv"
    src.write_bytes(fer_csv())
    meta = fetch_fer(replace(cfg, source="file", path=str(src), md5=None), *out, seed=0)
    assert meta["md5"] == md5(src.read_bytes()) and meta["md5_expected"] is None


def _torchvision_listed_md5(layout: str) -> str:
    """The digest on the line of torchvision's FER2013 source that names ``layout``."""
    import importlib.util
    import re

    source = Path(importlib.util.find_spec("torchvision").submodule_search_locations[0]) / "datasets" / "fer2013.py"
    return re.search(rf'"{re.escape(layout)}", "([0-9a-f]{{32}})"', source.read_text()).group(1)


@pytest.mark.parametrize("layout,shipped", [("fer2013.csv", fer_csv()), ("icml_face_data.csv", icml_of(fer_csv()))])
def test_canonical_md5_comes_from_torchvision_and_a_mismatch_writes_nothing(tmp_path, cfg, out, layout, shipped):
    src = tmp_path / layout
    src.write_bytes(shipped)
    with pytest.raises(PipelineError) as err:
        fetch_fer(replace(cfg, source="file", path=str(src), md5="canonical"), *out, seed=0)
    message = str(err.value)
    assert f"MD5 {md5(shipped)} does not match the expected {_torchvision_listed_md5(layout)}" in message
    assert "fer.md5: null" in message
    assert_nothing_written(*out)


@pytest.mark.slow
def test_canonical_md5_is_what_the_imported_torchvision_checks():
    from torchvision.datasets import FER2013

    assert CANONICAL_MD5 == {"fer2013.csv": FER2013._RESOURCES["fer"][1],
                             "icml_face_data.csv": FER2013._RESOURCES["icml"][1]}


def test_explicit_md5_mismatch_writes_nothing(tmp_path, cfg, out):
    src = tar_gz(tmp_path / "fer2013.tar.gz", {"fer2013/fer2013.csv": fer_csv()})
    with pytest.raises(PipelineError, match=r"fer2013.tar.gz:fer2013/fer2013.csv: MD5 .* does not match"):
        fetch_fer(replace(cfg, source="file", path=str(src), md5="0" * 32), *out, seed=0)
    assert_nothing_written(*out)


@pytest.mark.parametrize("members,links,words", [
    ({"../fer2013.csv": fer_csv()}, None, "member '../fer2013.csv' would land outside"),
    ({"fer2013/../../x": b"x", "fer2013/fer2013.csv": fer_csv()}, None, "would land outside"),
    ({"/etc/fer2013.csv": fer_csv()}, None, "member '/etc/fer2013.csv' would land outside"),
    ({"fer2013/fer2013.csv": fer_csv()}, {"fer2013/evil": "/etc/passwd"}, "member 'fer2013/evil' is a link"),
])
def test_unsafe_tar_is_refused(tmp_path, cfg, out, members, links, words):
    src = tar_gz(tmp_path / "fer2013.tar.gz", members, links)
    with pytest.raises(PipelineError, match=words):
        fetch_fer(replace(cfg, source="file", path=str(src), md5=None), *out, seed=0)
    assert_nothing_written(*out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fer2013.tar.gz", "raw"]


def test_unsafe_zip_is_refused(tmp_path, cfg, out):
    src = tmp_path / "fer.zip"
    with zipfile.ZipFile(src, "w") as zf:
        zf.writestr("../../fer2013.csv", fer_csv())
    with pytest.raises(PipelineError, match="would land outside"):
        fetch_fer(replace(cfg, source="file", path=str(src), md5=None), *out, seed=0)
    assert_nothing_written(*out)


def test_archive_without_the_csv_lists_its_members(tmp_path, cfg, out):
    src = tar_gz(tmp_path / "other.tar.gz", {"data/train.csv": b"emotion,pixels\n"})
    with pytest.raises(PipelineError, match=r"neither fer2013.csv nor icml_face_data.csv \(members: data/train.csv\)"):
        fetch_fer(replace(cfg, source="file", path=str(src), md5=None), *out, seed=0)
    assert_nothing_written(*out)


@pytest.mark.parametrize("content,words", [(b"", "the file is empty"),
                                           (b"pixels\n1 2\n", "line 1 is 'pixels', neither")])
def test_not_a_fer_csv(tmp_path, cfg, out, content, words):
    src = tmp_path / "fer2013.csv"
    src.write_bytes(content)
    with pytest.raises(PipelineError, match=words):
        fetch_fer(replace(cfg, source="file", path=str(src), md5=None), *out, seed=0)
    assert_nothing_written(*out)


def test_truncated_gzip_is_reported_as_damaged(tmp_path, cfg, out):
    src = tmp_path / "fer2013.csv.gz"
    src.write_bytes(gzip.compress(fer_csv())[:-40])
    with pytest.raises(PipelineError, match="the file is damaged"):
        fetch_fer(replace(cfg, source="file", path=str(src), md5=None), *out, seed=0)
    assert_nothing_written(*out)


def test_missing_path_names_the_key(tmp_path, cfg, out):
    with pytest.raises(PipelineError, match=r"`fer.path`: .*nope.tar.gz not found"):
        fetch_fer(replace(cfg, source="file", path=str(tmp_path / "nope.tar.gz")), *out, seed=0)
    with pytest.raises(PipelineError, match="`fer.path` is not set"):
        fetch_fer(replace(cfg, source="file", path=None), *out, seed=0)
    assert_nothing_written(*out)


# ----------------------------------------------------------------------------- url source

class _Handler(http.server.BaseHTTPRequestHandler):
    files: dict[str, bytes] = {}

    def do_GET(self):  # noqa: N802 - http.server's name
        path = self.path.split("?")[0]
        if path == "/cut.tar.gz":  # promises the whole archive, sends half, hangs up
            body = self.files["/fer2013.tar.gz"]
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[:len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        if path not in self.files:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.files[path])))
        self.end_headers()
        self.wfile.write(self.files[path])

    def log_message(self, *args):
        pass


@pytest.fixture
def server(tmp_path):
    archive = tar_gz(tmp_path / "served.tar.gz", {"fer2013/fer2013.csv": fer_csv(40)})
    _Handler.files = {"/fer2013.tar.gz": archive.read_bytes()}
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_url_source_downloads_verifies_and_cleans_up(server, cfg, out):
    meta = fetch_fer(replace(cfg, source="url", url=f"{server}/fer2013.tar.gz?token=secret",
                             md5=md5(fer_csv(40))), *out, seed=0)
    assert out[0].read_bytes() == fer_csv(40)
    assert meta["origin"] == f"{server}/fer2013.tar.gz" and "secret" not in out[1].read_text()
    assert sorted(p.name for p in out[0].parent.iterdir()) == ["fer2013.csv", "fer2013.meta.json"]


def test_interrupted_download_leaves_nothing(server, cfg, out):
    with pytest.raises(PipelineError, match="interrupted"):
        fetch_fer(replace(cfg, source="url", url=f"{server}/cut.tar.gz", md5=None), *out, seed=0)
    assert_nothing_written(*out)


def test_http_error_and_missing_url(server, cfg, out):
    with pytest.raises(PipelineError, match="answered HTTP 404"):
        fetch_fer(replace(cfg, source="url", url=f"{server}/missing.csv", md5=None), *out, seed=0)
    with pytest.raises(PipelineError, match="`fer.url` is not set"):
        fetch_fer(replace(cfg, source="url", url=None), *out, seed=0)
    assert_nothing_written(*out)


# ----------------------------------------------------------------------------- kaggle source

def test_kaggle_without_credentials_says_where_to_put_them(tmp_path, cfg, out, monkeypatch, capsys):
    for var in ("KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_API_TOKEN", "KAGGLE_CONFIG_DIR"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path / "home" / ".kaggle"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "home" / ".config"))
    with pytest.raises(PipelineError, match=r"needs Kaggle credentials.*kaggle.json.*KAGGLE_USERNAME"):
        fetch_fer(replace(cfg, source="kaggle"), *out, seed=0)
    assert_nothing_written(*out)
    assert capsys.readouterr().out == ""


def test_kaggle_download_goes_through_the_archive_checks(tmp_path, cfg, out, monkeypatch):
    calls = []

    class FakeApi:
        def competition_download_file(self, competition, file_name, path, quiet):
            calls.append((competition, file_name))
            tar_gz(Path(path) / file_name, {"fer2013/fer2013.csv": fer_csv()})

    monkeypatch.setattr(kaggle_download, "authenticated_api", lambda: FakeApi())
    meta = fetch_fer(replace(cfg, source="kaggle", md5=md5(fer_csv())), *out, seed=0)
    assert calls == [(cfg.kaggle_competition, "fer2013.tar.gz")]
    assert meta["origin"] == f"kaggle:{cfg.kaggle_competition}" and out[0].read_bytes() == fer_csv()


def test_kaggle_download_failure_hides_the_details(tmp_path, cfg, out, monkeypatch):
    class Response:
        status_code = 403

    class Refused(Exception):
        response = Response()

    class FakeApi:
        def competition_download_file(self, *args, **kwargs):
            raise Refused("https://storage.example/signed?token=secret")

    monkeypatch.setattr(kaggle_download, "authenticated_api", lambda: FakeApi())
    with pytest.raises(PipelineError) as err:
        fetch_fer(replace(cfg, source="kaggle"), *out, seed=0)
    assert "HTTP 403" in str(err.value) and "accept the competition's rules" in str(err.value)
    assert "secret" not in str(err.value)
    assert_nothing_written(*out)


# ----------------------------------------------------------------------------- synthetic source

def test_synthetic_source_writes_a_decodable_labelled_csv(cfg, out):
    pytest.importorskip("staged_fer.synthetic.fer")
    small = replace(cfg, source="synthetic",
                    synthetic=replace(cfg.synthetic, train=14, public_test=7, private_test=7))
    meta = fetch_fer(small, *out, seed=3)
    assert meta["synthetic"] is True and meta["source"] == "synthetic" and meta["rows"] == 28
    assert meta["md5"] == md5(out[0].read_bytes()) and meta["md5_expected"] is None
    assert sorted(p.name for p in out[0].parent.iterdir()) == ["fer2013.csv", "fer2013.meta.json"]
    arrays, report = decode_fer_csv(out[0])
    assert report["rows"] == 28
    assert {u: int((arrays["usage"] == u).sum()) for u in ("Training", "PublicTest", "PrivateTest")} == \
        {"Training": 14, "PublicTest": 7, "PrivateTest": 7}
    first = out[0].read_bytes()
    fetch_fer(small, *out, seed=3)
    assert out[0].read_bytes() == first


# ----------------------------------------------------------------------------- the stage

def test_stage_error_is_one_line_and_exit_code_1(tmp_path, capsys):
    from stages.download_fer import main

    params = baseline_params()
    params["fer"]["path"] = str(tmp_path / "absent.tar.gz")
    path = tmp_path / "params.yaml"
    path.write_text(json.dumps(params))  # JSON is YAML
    rc = run_stage(main, ["--params", str(path), "--out", str(tmp_path / "raw" / "fer2013.csv"),
                          "--meta", str(tmp_path / "raw" / "meta.json")])
    err = capsys.readouterr().err
    assert rc == 1 and err.count("\n") == 1 and err.startswith("error: `fer.path`")
    assert not (tmp_path / "raw" / "fer2013.csv").exists()


def test_stage_runs_the_file_source(tmp_path, capsys):
    from stages.download_fer import main

    src = tmp_path / "fer2013.csv"
    src.write_bytes(fer_csv())
    params = baseline_params()
    params["fer"].update(path=str(src), md5=md5(fer_csv()))
    (tmp_path / "params.yaml").write_text(json.dumps(params))
    rc = run_stage(main, ["--params", str(tmp_path / "params.yaml"), "--out", str(tmp_path / "o.csv"),
                          "--meta", str(tmp_path / "o.json")])
    assert rc == 0 and (tmp_path / "o.csv").read_bytes() == fer_csv()
    assert "6 rows" in capsys.readouterr().out
