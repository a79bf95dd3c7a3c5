"""Stage export@<model> (optional): write a checkpoint as ONNX with its JSON sidecar.

Off by default: the stage exists only for the checkpoints listed in params `export.onnx`
(see dvc.yaml). Reads no params itself: the checkpoint holds everything the export needs.
The work is staged_fer/export.py (`python -m staged_fer.export` runs the same outside DVC).
"""
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from staged_fer.cli import run_stage
from staged_fer.export import main

if __name__ == "__main__":
    sys.exit(run_stage(main))
