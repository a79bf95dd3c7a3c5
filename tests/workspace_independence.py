"""Check that the test suite does not depend on the working params.yaml.

Runs a representative slice of the suite (training, alignment, evaluation and the `dvc`
integration tests) twice in a disposable copy of the repository: once as committed, once with
a working params.yaml edited the way workspace experiments leave it. Every test must end the
same way both times. Run from the repository root: `python tests/workspace_independence.py`.
"""
from __future__ import annotations

import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import yaml

from tests.dvc_project import DvcProject, set_param

SLICE = ["tests/test_training_phases.py", "tests/test_training_loop.py", "tests/test_training_stream.py",
         "tests/test_align_stage.py", "tests/test_align_resume.py", "tests/test_evaluation_stage.py",
         "tests/test_pipeline_dvc.py"]
# What `dvc exp run -S ...` in the workspace leaves behind: each one changes a code path
# (another network, a torchrun relaunch, no phase-1 training, another landmark model).
EDITS = {"model": "vgg_m", "runtime.devices": 2, "phase1.data": "none", "align.landmarks": "fan"}


def outcomes(project: DvcProject, report: Path) -> dict[str, str]:
    project.run(sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={report}",
                *SLICE, check=False)
    results = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        kinds = [child.tag for child in case if child.tag in ("failure", "error", "skipped")]
        results[f"{case.get('classname')}::{case.get('name')}"] = kinds[0] if kinds else "passed"
    return results


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="workspace-independence-") as tmp:
        tmp = Path(tmp)
        project = DvcProject.copy_of_repo(tmp / "repo", {})
        pristine = outcomes(project, tmp / "pristine.xml")
        params = yaml.safe_load((project.path / "params.yaml").read_text())
        for key, value in EDITS.items():
            set_param(params, key, value)
        (project.path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        edited = outcomes(project, tmp / "edited.xml")
    differ = sorted(t for t in pristine.keys() | edited.keys() if pristine.get(t) != edited.get(t))
    bad = sorted(t for t, kind in pristine.items() if kind in ("failure", "error"))
    for test in differ:
        print(f"differs: {test}: {pristine.get(test, 'absent')} as committed, {edited.get(test, 'absent')} "
              f"with params.yaml edited ({', '.join(f'{k}={v}' for k, v in EDITS.items())})")
    for test in bad:
        print(f"fails as committed: {test}")
    counts = {kind: list(edited.values()).count(kind) for kind in ("passed", "skipped", "failure", "error")}
    print(f"workspace independence: {len(pristine)} tests, {len(differ)} differ with the edited params.yaml; "
          f"edited run: {counts}")
    return 1 if differ or bad or not pristine else 0


if __name__ == "__main__":
    sys.exit(main())
