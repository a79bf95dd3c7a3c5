"""Classify the faces in photos, folders and videos with a trained checkpoint.

``python -m staged_fer.predict INPUT... --model models/phase2.pt --out predictions.csv``

Each face is found and aligned by the pipeline's own face preparation (staged_fer/faces) with
the `align` params recorded in the checkpoint, so the model sees faces cropped exactly like
the ones it was trained and scored on, whatever params.yaml says today; then it is scored by
the validation input path of training (staged_fer/models/trained.py).

  checkpoint.py  the model with its run's input path and face preparation, from one checkpoint
  sources.py     the inputs: image files, folders (recursively), videos sampled at --fps
  faces.py       every face of one photo or frame, found and aligned (worker processes)
  annotate.py    copies of the inputs with boxes and labels drawn
  run.py         the loop: batched inference, the CSV, progress
"""
