"""A disposable copy of the project, in its own git repo, driven through the real `dvc` CLI."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from staged_fer.pipeline_paths import fill, pipeline_paths
from tests.params_baseline import committed_text

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
# Git-ignored files of a set-up checkout that the copy needs: the page template `dvc plots
# show` uses (.dvc/config; `make setup` builds it).
SETUP_FILES = (".dvc/plots/template.html",)

# The smallest configuration that still runs every stage for real: synthetic sources, the
# offline dlib landmarks, random init, tiny inputs, one epoch per phase.
TINY_PARAMS = {
    "fer.source": "synthetic",
    "fer.synthetic": {"train": 210, "public_test": 70, "private_test": 70},
    "target.source": "synthetic",
    "target.synthetic": {"train_per_class": 4, "val_per_class": 3, "test": 3},
    "align.landmarks": "dlib",
    "align.workers": 1,
    "models.alexnet.weights": "none",
    "models.alexnet.input_size": 96,
    "models.vgg_m.weights": "none",
    "models.vgg_m.input_size": 96,
    "input.resize": 112,
    "phase1.epochs": 1,
    "phase1.batch_size": 32,
    "phase2.epochs": 1,
    "phase2.batch_size": 16,
    "evaluate.bootstrap": 50,
}


def set_param(params: dict, dotted: str, value) -> None:
    *parents, last = dotted.split(".")
    node = params
    for key in parents:
        node = node[key]
    if last not in node:
        raise KeyError(f"params.yaml has no key {dotted}")
    node[last] = value


def output_folders(dvc_yaml: Path) -> set[str]:
    """The top folders that the stages of ``dvc_yaml`` write into (data/, models/, metrics/, ...)."""
    spec = yaml.safe_load(dvc_yaml.read_text())
    names = pipeline_paths(dvc_yaml)
    folders = set()
    for stage in spec["stages"].values():
        stage = stage.get("do", stage)   # a `foreach` stage keeps its outputs under `do`
        for kind in ("outs", "metrics", "plots"):
            for entry in stage.get(kind, []):
                path = next(iter(entry)) if isinstance(entry, dict) else entry
                path = fill(path, names)
                if "/" in path:
                    folders.add(path.split("/")[0])
    return folders


# The raw-data folders the pipeline depends on (dvc.yaml's ${fer.path}, ${fer.ferplus_path},
# ${target.root}): their READMEs are tracked and must be there, though they sit in data/ beside
# the run outputs.
RAW_DATA = "data/external/"


def _is_run_output(rel: str, folders: set[str]) -> bool:
    return rel == "dvc.lock" or (rel.split("/")[0] in folders and not rel.startswith(RAW_DATA))


class DvcProject:
    def __init__(self, path: Path):
        self.path = path
        # The user's own DVC and git configuration (a global cache dir, hooks) stays out of it.
        private = path.with_name(path.name + ".config")
        self.env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
                    "GIT_AUTHOR_NAME": "test", "GIT_AUTHOR_EMAIL": "test@example.com",
                    "GIT_COMMITTER_NAME": "test", "GIT_COMMITTER_EMAIL": "test@example.com",
                    "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1",
                    "DVC_GLOBAL_CONFIG_DIR": str(private / "global"),
                    "DVC_SYSTEM_CONFIG_DIR": str(private / "system"),
                    "DVC_SITE_CACHE_DIR": str(private / "site-cache"),
                    "DVC_NO_ANALYTICS": "1", "OMP_NUM_THREADS": "2"}

    @classmethod
    def copy_of_repo(cls, dest: Path, overrides: dict) -> "DvcProject":
        """Copy the repo's code into a fresh git repo, shrink params.yaml, commit.

        The code is copied as it stands (tracked and unignored files), so the tests exercise
        the code being tested; params.yaml comes from the commit, and `dvc.lock` and every
        output of the pipeline are left behind, so a user's experiments and runs in the
        working tree never leak into the copy.
        """
        listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT,
                                capture_output=True, check=True).stdout.decode().split("\0")
        outputs = output_folders(ROOT / "dvc.yaml")
        for rel in [*filter(None, listed), *SETUP_FILES]:
            src = ROOT / rel
            if src.is_file() and not _is_run_output(rel, outputs):
                (dest / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, dest / rel)
        params = yaml.safe_load(committed_text("params.yaml"))
        for key, value in overrides.items():
            set_param(params, key, value)
        (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        project = cls(dest)
        project.run("git", "init", "-q", "-b", "main")
        project.run("git", "add", "-A")
        project.run("git", "commit", "-q", "-m", "tiny configuration")
        return project

    @classmethod
    def clone(cls, url: str | Path, dest: Path) -> "DvcProject":
        """A `git clone` of ``url`` at ``dest``, set up as a user's would be: its `.venv` is this one."""
        project = cls(dest)
        subprocess.run(["git", "clone", "-q", str(url), str(dest)], env=project.env, check=True,
                       capture_output=True)
        (dest / ".venv").symlink_to(BIN.parent)
        return project

    def make(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        """`make ...` in the project as a user runs it once set up: the venv's stamp is not remade."""
        return self.run("make", "-o", ".venv/.installed", *args, check=check)

    def run(self, *cmd: str, check: bool = True) -> subprocess.CompletedProcess:
        exe = str(BIN / cmd[0]) if cmd[0] == "dvc" else cmd[0]
        result = subprocess.run([exe, *cmd[1:]], cwd=self.path, env=self.env, capture_output=True, text=True)
        if check and result.returncode != 0:
            raise AssertionError(f"{' '.join(cmd)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
        return result

    def dvc(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return self.run("dvc", *args, check=check)

    def repro(self, *args: str) -> list[str]:
        """Run `dvc repro` and return the names of the stages it ran."""
        out = self.dvc("repro", *args).stdout
        return re.findall(r"Running stage '([^']+)'", out)

    def set_params(self, **dotted) -> None:
        params = yaml.safe_load((self.path / "params.yaml").read_text())
        for key, value in dotted.items():
            set_param(params, key.replace("__", "."), value)
        (self.path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
