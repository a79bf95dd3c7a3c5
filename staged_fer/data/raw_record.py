"""`make data`: record the placed raw data with DVC, so every experiment sees it.

    python -m staged_fer.data.raw_record [--params params.yaml] [--check]

Queued and ``--temp`` experiments run in a fresh copy that holds what Git tracks and what DVC
checks out of its cache; placed but unrecorded files are in neither. So the raw data placed at
the paths params.yaml names (``fer.path``, ``fer.ferplus_path``, ``target.root``; by default
the folders under data/external/) is added to DVC's cache: one ``dvc add`` per placed entry,
whose ``.dvc`` file (committed) lets every copy and clone check the entry out at the same
relative path, and dvc.lock pins it by hash as before. The folders' own README (tracked by
Git, so the folders exist in every checkout and the synthetic sources run without data) is not
part of what is added: ``dvc add`` refuses a folder that holds a Git-tracked file, so the
entries beside it are added one by one (FER-2013's file; SFEW's Train, Val and Test). A path
outside the repository is left as it is: it is the same for every run on this machine only.

``--check`` adds nothing: it stops with one line naming the first raw path that is placed but
not recorded, changed or missing since it was recorded, or whose ``.dvc`` file is not
committed, and the command that puts it right. `make grid` runs it before queueing.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Sequence

from ..cli import dvc_output
from ..params import load_params
from ..errors import PipelineError

RAW_KEYS = ("fer.path", "fer.ferplus_path", "target.root")
# What Git keeps in a raw-data folder: its README, and what `dvc add` writes beside an entry.
GIT_FILES = {"README.md", ".gitignore"}
DVC_SUFFIX = ".dvc"


def project_file(path: Path) -> bool:
    """Whether ``path``, in a raw-data folder, is the project's own (its README, a record of
    `make data`) rather than data."""
    return path.name in GIT_FILES or path.name.endswith(DVC_SUFFIX)


def restore_hint(folder: Path) -> str:
    """For an error about missing raw data in ``folder``: the records there whose entry is gone,
    and how to get it back; empty when there are none."""
    gone = [r for r in records(folder) if not r.with_suffix("").exists()] if folder.is_dir() else []
    if not gone:
        return ""
    names = " ".join(str(r) for r in gone)
    return f"; `make data` recorded it in {names}: `dvc checkout {names}` restores it"


def raw_paths(params: dict, root: Path) -> dict[str, Path]:
    """params key -> the raw path it names, for those inside the repository at ``root``."""
    found = {}
    for key in RAW_KEYS:
        section, name = key.split(".")
        path = (root / str(params[section][name])).resolve()
        if path.is_relative_to(root.resolve()):
            found[key] = path
    return found


def placed(path: Path) -> list[Path]:
    """The entries of raw path ``path`` that DVC records: the file itself, or every entry of the
    folder but Git's own files and the ``.dvc`` records."""
    if path.is_file():
        return [path]
    if not path.is_dir():
        return []
    return sorted(p for p in path.iterdir() if not project_file(p))


def records(path: Path) -> list[Path]:
    """The ``.dvc`` files of raw path ``path`` (beside the file, or in the folder)."""
    if path.is_dir():
        return sorted(path.glob("*" + DVC_SUFFIX))
    record = path.with_name(path.name + DVC_SUFFIX)
    return [record] if record.is_file() else []


def _rel(path: Path, root: Path) -> str:
    return path.resolve().relative_to(root.resolve()).as_posix()


def check(params: dict, root: Path) -> None:
    """PipelineError naming the first raw path a queued experiment would not see as it is here."""
    paths = raw_paths(params, root)
    dvcfiles = []
    for key, path in paths.items():
        recorded = {r.with_suffix("") for r in records(path)}
        for entry in placed(path):
            if entry not in recorded:
                raise PipelineError(f"{_rel(entry, root)} (`{key}`): placed but not recorded, so queued and "
                                    f"--temp experiments do not see it: run `make data`")
        dvcfiles += records(path)
    if not dvcfiles:
        return
    rel = [_rel(p, root) for p in dvcfiles]
    status = dvc_output("status", "--json", *rel, cwd=root)
    for dvcfile, changes in sorted(json.loads(status or "{}").items()):
        for change in changes:
            for out, state in (change.get("changed outs") or {}).items() if isinstance(change, dict) else ():
                if state == "deleted":
                    raise PipelineError(f"{out}: recorded by `make data` ({dvcfile}) but missing here: run `dvc "
                                        f"checkout {dvcfile}` (or `dvc pull`), or place it again and run `make data`")
                raise PipelineError(f"{out}: {state} since `make data` recorded it ({dvcfile}): run `make data` "
                                    f"again and commit {dvcfile}")
    ignores = {str(Path(r).parent / ".gitignore") for r in rel}
    dirty = subprocess.run(["git", "status", "--porcelain", "--", *rel, *sorted(ignores)],
                           cwd=root, capture_output=True, text=True, check=True).stdout.splitlines()
    if dirty:
        raise PipelineError(f"{dirty[0][3:]}: not committed, so queued experiments do not see the raw data it records: "
                            f"`git add {' '.join(rel)} && git commit`")


def record(params: dict, root: Path) -> list[Path]:
    """``dvc add`` every placed entry; returns the files to commit (the .dvc files and .gitignores)."""
    entries = [e for path in raw_paths(params, root).values() for e in placed(path)]
    if not entries:
        raise PipelineError("make data: nothing placed at " + ", ".join(
            f"`{key}` ({params[key.split('.')[0]][key.split('.')[1]]})" for key in RAW_KEYS)
            + ": place the raw data first (README, Reproducing the paper)")
    rel = [_rel(e, root) for e in entries]
    result = subprocess.run([sys.executable, "-m", "dvc", "add", *rel], cwd=root)
    if result.returncode != 0:
        raise PipelineError(f"`dvc add {' '.join(rel)}` failed (exit code {result.returncode}); see DVC's error above")
    to_commit = []
    for e in entries:
        to_commit += [e.with_name(e.name + DVC_SUFFIX), e.parent / ".gitignore"]
    return sorted({Path(_rel(p, root)) for p in to_commit if p.is_file()})


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--params", default="params.yaml", help="params file naming the raw paths")
    p.add_argument("--check", action="store_true", help="record nothing; stop if a raw path is not as recorded")
    args = p.parse_args(argv)
    params = load_params(args.params)
    root = Path(args.params).resolve().parent
    if args.check:
        check(params, root)
        return
    files = record(params, root)
    print("recorded; commit the records so every checkout and experiment sees the data:\n"
          f"  git add {' '.join(map(str, files))} && git commit -m 'raw data'")


if __name__ == "__main__":
    from ..cli import run_stage
    sys.exit(run_stage(main))
