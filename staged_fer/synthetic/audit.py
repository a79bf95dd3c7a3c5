"""How well the synthetic SFEW photos exercise the real detector and landmark model.

A photo counts as detected when OpenCV's Viola-Jones frontal cascade, run as the alignment
stage runs it (equalised grayscale, scale factor 1.1, 4 neighbours, 24 px minimum), returns a
box that holds both true eye centres of the main face; a detected face counts as fitted when
dlib's 68-point predictor on that box puts the eye centres within FIT_TOLERANCE of the true
eye distance.
"""
from __future__ import annotations

import time

import cv2
import numpy as np

from staged_fer.labels import NUM_CLASSES
from staged_fer.synthetic.sfew import Scene, render_scene

FIT_TOLERANCE = 0.25


def frontal_cascade() -> cv2.CascadeClassifier:
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    if cascade.empty():
        raise RuntimeError("OpenCV's haarcascade_frontalface_default.xml did not load")
    return cascade


def detect_main_face(cascade: cv2.CascadeClassifier, scene: Scene):
    """The detected box (x, y, w, h) holding both true eyes of the main face, or None."""
    gray = cv2.equalizeHist(cv2.cvtColor(scene.image, cv2.COLOR_BGR2GRAY))
    boxes = cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=4, minSize=(24, 24))
    for x, y, w, h in boxes:
        if all(x <= ex <= x + w and y <= ey <= y + h for ex, ey in scene.eyes):
            return int(x), int(y), int(w), int(h)
    return None


def eye_fit_error(predictor, scene: Scene, box) -> float:
    """Mean eye-centre error of dlib's 68-point fit, relative to the true eye distance."""
    import dlib

    x, y, w, h = box
    gray = cv2.cvtColor(scene.image, cv2.COLOR_BGR2GRAY)
    shape = predictor(gray, dlib.rectangle(x, y, x + w, y + h))
    pts = np.array([(p.x, p.y) for p in shape.parts()], np.float64)
    # Points 36-41 are the image-left eye, 42-47 the image-right one.
    found = np.stack([pts[36:42].mean(0), pts[42:48].mean(0)])
    e2e = float(np.linalg.norm(scene.eyes[1] - scene.eyes[0]))
    return float(np.linalg.norm(found - scene.eyes, axis=1).mean() / e2e)


def landmark_predictor():
    import warnings

    import dlib
    with warnings.catch_warnings():  # face_recognition_models imports the deprecated pkg_resources
        warnings.simplefilter("ignore", UserWarning)
        import face_recognition_models

    return dlib.shape_predictor(face_recognition_models.pose_predictor_model_location())


def measure(photos: int, seed: int) -> dict:
    """Render ``photos`` scenes (labels cycling through the classes) and count hits and fits."""
    cascade, predictor = frontal_cascade(), landmark_predictor()
    detected = 0
    errors = []
    render_s = 0.0
    for k in range(photos):
        rng = np.random.default_rng([seed, k])
        t = time.process_time()
        scene = render_scene(rng, k % NUM_CLASSES)
        render_s += time.process_time() - t
        box = detect_main_face(cascade, scene)
        if box is None:
            continue
        detected += 1
        errors.append(eye_fit_error(predictor, scene, box))
    return {"photos": photos, "detected": detected,
            "fitted": int(sum(e < FIT_TOLERANCE for e in errors)),
            "median_eye_error": float(np.median(errors)) if errors else float("nan"),
            "render_cpu_ms_per_photo": 1000 * render_s / max(photos, 1)}
