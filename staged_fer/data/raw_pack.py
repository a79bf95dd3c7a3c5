"""`make data PACK=1`: each split folder of the target tree replaced by its zip archive, before
`make data` records it.

    python -m staged_fer.data.raw_pack [--params params.yaml]

DVC records a folder file by file, so with a few hundred thousand photos every `dvc status`
and every queued experiment pays for each one (docs/large-datasets.md); an archive is one file
(staged_fer/data/split_archive.py reads it). Each split folder that ``target.splits`` names
under ``target.root`` becomes ``<folder>.zip``: every file and folder under it by sorted path,
stored uncompressed (photos are compressed already) with fixed times and modes, so the same
files always make the same bytes and DVC hash. The archive is written under a temporary name,
read back whole and checked to hold the photos the scan finds in the folder; only then does it
take the folder's place, and a ``.dvc`` record `make data` wrote for the folder is removed
(``dvc remove``: the record and its .gitignore line) for `make data` to record the archive.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Sequence

from ..params import load_params
from ..errors import PipelineError
from .raw_record import DVC_SUFFIX
from .split_archive import ArchiveSplit, FolderSplit, archive_of, split_source

# Fixed member times and modes: the same files always make the same archive.
EPOCH = (1980, 1, 1, 0, 0, 0)
FILE_MODE, FOLDER_MODE = 0o100644, 0o040755
DOS_FOLDER = 0x10


def _member(name: str, folder: bool) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name + "/" if folder else name, date_time=EPOCH)
    info.compress_type = zipfile.ZIP_STORED
    info.external_attr = (FOLDER_MODE << 16 | DOS_FOLDER) if folder else FILE_MODE << 16
    return info


def _view(split: FolderSplit | ArchiveSplit) -> tuple:
    """All that the scan reads of a split: its entries, the files under each of its folders and
    under the whole split."""
    folders, files = split.entries()
    return folders, files, {f: split.files(f) for f in folders}, split.files()


def _contents(folder: Path) -> tuple[list[str], list[str]]:
    """Every folder and file under ``folder`` (links followed), relative, POSIX, sorted."""
    folders, files = [], []
    for here, subfolders, names in os.walk(folder, followlinks=True):
        rel = Path(here).relative_to(folder).as_posix()
        prefix = "" if rel == "." else rel + "/"
        folders += [prefix + s for s in subfolders]
        files += [prefix + n for n in names if (Path(here) / n).is_file()]
    return sorted(folders), sorted(files)


def pack(folder: Path) -> Path:
    """``folder`` replaced by its archive (see the module's docstring); returns the archive."""
    archive = archive_of(folder)
    partial = archive.with_name(archive.name + ".partial")
    folders, files = _contents(folder)
    try:
        with zipfile.ZipFile(partial, "w", allowZip64=True) as out:
            for name in folders:
                out.writestr(_member(name, folder=True), b"")
            for name in files:
                out.writestr(_member(name, folder=False), (folder / name).read_bytes())
        with zipfile.ZipFile(partial) as written:
            bad = written.testzip()
        if bad is not None:
            raise PipelineError(f"{partial}: {bad} reads back with a wrong checksum; {folder} is left as it was")
        if _view(ArchiveSplit(partial)) != _view(FolderSplit(folder)):
            raise PipelineError(f"{partial}: the scan finds other photos in it than in {folder} (a file changed "
                                f"while it was packed, or a link inside a class folder?); {folder} is left as it was")
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    os.replace(partial, archive)
    shutil.rmtree(folder)
    return archive


def split_folders(params: dict, root: Path) -> list[Path]:
    """The split folders of ``target.root`` (relative to ``root``) placed as folders."""
    tree = root / str(params["target"]["root"])
    names = [n for n in params["target"]["splits"].values() if n is not None]
    return [tree / n for n in names if isinstance(split_source(tree, n), FolderSplit)]


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--params", default="params.yaml", help="params file naming the target tree")
    args = p.parse_args(argv)
    root = Path(args.params).resolve().parent
    folders = split_folders(load_params(args.params), root)
    if not folders:
        print("make data PACK=1: no split folder placed to pack")
    for folder in folders:
        archive = pack(folder)
        shown = folder.relative_to(root) if folder.is_relative_to(root) else folder
        print(f"packed {shown}/ into {archive.name} ({archive.stat().st_size / 2**20:.1f} MiB)", flush=True)
        record = folder.with_name(folder.name + DVC_SUFFIX)
        if record.is_file():   # `make data` recorded the folder: the archive takes its place
            removed = subprocess.run([sys.executable, "-m", "dvc", "remove", str(record)], cwd=root)
            if removed.returncode != 0:
                raise PipelineError(f"`dvc remove {record}` failed (exit code {removed.returncode}); "
                                    f"remove {record} before `make data`")


if __name__ == "__main__":
    from ..cli import run_stage
    sys.exit(run_stage(main))
