"""A disposable copy of the project, in its own git repo, driven through the real `dvc` CLI."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

# The smallest configuration that still runs every stage for real: synthetic sources, the
# offline dlib landmarks, random init, tiny inputs, one epoch per stage.
TINY_PARAMS = {
    "fer.source": "synthetic",
    "fer.synthetic": {"train": 210, "public_test": 70, "private_test": 70},
    "emotiw.source": "synthetic",
    "emotiw.synthetic": {"train_per_class": 4, "val_per_class": 3, "test": 3},
    "align.landmarks": "dlib",
    "align.workers": 1,
    "models.alexnet.weights": "none",
    "models.alexnet.input_size": 96,
    "models.vgg_m.weights": "none",
    "models.vgg_m.input_size": 96,
    "input.resize": 112,
    "stage1.epochs": 1,
    "stage1.batch_size": 32,
    "stage2.epochs": 1,
    "stage2.batch_size": 16,
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


class DvcProject:
    def __init__(self, path: Path):
        self.path = path
        self.env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
                    "GIT_AUTHOR_NAME": "test", "GIT_AUTHOR_EMAIL": "test@example.com",
                    "GIT_COMMITTER_NAME": "test", "GIT_COMMITTER_EMAIL": "test@example.com",
                    "DVC_NO_ANALYTICS": "1", "OMP_NUM_THREADS": "2"}

    @classmethod
    def copy_of_repo(cls, dest: Path, overrides: dict) -> "DvcProject":
        """Copy the tracked and unignored files of the repo, shrink params.yaml, commit."""
        listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT,
                                capture_output=True, check=True).stdout.decode().split("\0")
        for rel in filter(None, listed):
            src = ROOT / rel
            if src.is_file():
                (dest / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, dest / rel)
        params = yaml.safe_load((dest / "params.yaml").read_text())
        for key, value in overrides.items():
            set_param(params, key, value)
        (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        project = cls(dest)
        project.run("git", "init", "-q", "-b", "main")
        project.run("git", "add", "-A")
        project.run("git", "commit", "-q", "-m", "tiny configuration")
        return project

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
