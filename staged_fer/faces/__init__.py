"""Face preparation for EmotiW/SFEW as in Ng et al. (ICMI 2015).

Viola-Jones detection (frontal and profile), 68-point landmarks (FAN or dlib) with a fit score
that rejects non-faces, eye-based rotation and scale, the paper's crop box, 256x256 grayscale
with a min-max stretch; images without an acceptable face fall back to a documented crop
(Val/Test) or are dropped (Train).
"""
