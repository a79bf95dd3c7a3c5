"""Face preparation for EmotiW/SFEW as in Ng et al. (ICMI 2015).

Viola-Jones detection (frontal and profile), 68-point landmarks (FAN or dlib) with a fit score
that rejects non-faces, eye-based rotation and scale, the paper's crop box, 256x256 grayscale
with a min-max stretch; images without an acceptable face fall back to a documented crop
(Val/Test) or are dropped (Train).

  search.py       one photo's face: the API that align_target and predict both prepare faces with
  detection.py, landmarks.py, geometry.py, decode.py   its parts
  pool.py         the worker processes both spread their photos over
  pipeline.py     align_target's aligner over every photo, and the counts of its outcomes
  blocks.py, outputs.py, contact_sheet.py              what the stage writes
  config.py, record.py                                 the `align` params, and their record
"""
