"""Detection attempts: the padded retry for tight crops, profile passes only when needed, the
geometry check on landmark fits, the per-attempt rates and the sheets' markers."""
import cv2
import numpy as np
import pytest

from faces_samples import align_config, astronaut_gray
from staged_fer.faces import geometry
from staged_fer.faces.config import PadConfig
from staged_fer.faces.contact_sheet import failure_picks, marker
from staged_fer.faces.detection import FaceDetector
from staged_fer.faces.landmarks import DlibLandmarker
from staged_fer.faces.pipeline import ALIGNED, DROPPED, ImageTask, Result, attempt_rates, detect_gray, finish_one

# The astronaut's face fills this crop: no margin around it for the cascade's windows.
TIGHT = (slice(80, 172), slice(180, 266))


@pytest.fixture(scope="module")
def dlib_lm():
    return DlibLandmarker()


def _align(gray, lm, **cfg):
    cfg = align_config(**cfg)
    detector = FaceDetector(cfg.detector, cfg.pad)
    det, scene = detect_gray(ImageTask("x.png", "Train", 3), gray, detector)
    return finish_one(det, lm, cfg, detector, scene), det


def _photo_to_crop(eyes, size=256):
    """The eye-centre crop's map, rebuilt from the logged eyes (it depends on them alone)."""
    pts = np.zeros((68, 2))
    pts[36:42], pts[42:48] = eyes[0], eyes[1]
    return geometry.align(pts, size, "eye_centres").matrix


def test_tight_crop_is_found_on_the_padded_copy_and_logged_in_the_photo(dlib_lm):
    full = astronaut_gray()
    ref, _ = _align(full, dlib_lm)
    tight = np.ascontiguousarray(full[TIGHT])
    r, det = _align(tight, dlib_lm, whole_photo_fit=False)
    assert det.attempt == 1 and not [d for d in det.detections if not d.padded]  # frontal alone found nothing
    assert r.outcome == ALIGNED and r.detector == "frontal_padded" and r.attempt == "frontal_padded"
    offset = np.array([TIGHT[1].start, TIGHT[0].start])
    # Same eyes as on the whole photo, in the tight photo's own coordinates.
    np.testing.assert_allclose(r.eyes, ref.eyes - offset, atol=3.0)
    x, y, w, h = r.box
    assert -0.5 * w < x < tight.shape[1] and -0.5 * h < y < tight.shape[0] and w > 0.6 * tight.shape[1]


def test_padded_find_takes_its_crop_pixels_from_the_padded_copy(dlib_lm):
    """Constant fill: every crop pixel whose source lies outside the photo has the fill's value."""
    tight = np.ascontiguousarray(astronaut_gray()[TIGHT])
    r, _ = _align(tight, dlib_lm, pad=PadConfig(margin=0.35, fill="constant"), whole_photo_fit=False)
    assert r.outcome == ALIGNED and r.detector == "frontal_padded"
    inverse = cv2.invertAffineTransform(_photo_to_crop(r.eyes))
    ys, xs = np.mgrid[0:256, 0:256]
    src = geometry.apply(inverse, np.column_stack([xs.ravel(), ys.ravel()])).reshape(256, 256, 2)
    h, w = tight.shape
    outside = (src[..., 0] < -2) | (src[..., 0] > w + 1) | (src[..., 1] < -2) | (src[..., 1] > h + 1)
    inside = (src[..., 0] > 2) & (src[..., 0] < w - 3) & (src[..., 1] > 2) & (src[..., 1] < h - 3)
    assert outside.sum() > 1000 and inside.sum() > 1000
    fill = r.face[outside]
    assert fill.max() - fill.min() <= 1                 # flat: the padded copy's fill
    assert r.face[inside].std() > 20                    # the face itself


def test_profile_passes_run_only_when_no_frontal_attempt_finds_a_face(dlib_lm):
    cfg = align_config()
    detector = FaceDetector(cfg.detector, cfg.pad)

    class Forbidden:
        def detectMultiScale(self, *a, **k):
            raise AssertionError("profile cascade run although the frontal one found the face")
    detector.profile = Forbidden()
    det, scene = detect_gray(ImageTask("x.png", "Train", 3), astronaut_gray(), detector)
    r = finish_one(det, dlib_lm, cfg, detector, scene)
    assert r.outcome == ALIGNED and r.detector == "frontal"


def test_whole_photo_fit_aligns_a_crop_no_cascade_finds_and_rejects_texture(dlib_lm):
    full = astronaut_gray()
    ref, _ = _align(full, dlib_lm)
    face = np.ascontiguousarray(full[95:165, 188:258])      # inner face only: brows to chin
    small_pad = PadConfig(margin=0.05, fill="replicate")
    r, det = _align(face, dlib_lm, pad=small_pad, whole_photo_min_fit=0.3)
    assert det.detections == []
    assert r.outcome == ALIGNED and r.detector == "whole_photo" and r.box == (0.0, 0.0, 70.0, 70.0)
    np.testing.assert_allclose(r.eyes, ref.eyes - [188, 95], atol=4.0)
    # No detector vouches for a whole-photo fit: below its own threshold it is not taken.
    strict, _ = _align(face, dlib_lm, pad=small_pad, whole_photo_min_fit=min(1.0, r.fit + 0.01))
    assert strict.outcome == DROPPED
    noise = (np.random.default_rng(1).random((120, 120)) * 255).astype(np.uint8)
    r, _ = _align(noise, dlib_lm)
    assert r.outcome == DROPPED and r.reason.startswith("no face detected")


def test_geometry_check_accepts_a_face_and_names_what_is_wrong_otherwise(dlib_lm):
    gray = astronaut_gray()
    box = (177.0, 67.0, 93.0, 93.0)
    (points, fit), = dlib_lm(gray, [box])
    assert fit > 0.5 and geometry.implausible(points, box) == ""
    assert "eye distance" in geometry.implausible(points, (100.0, 0.0, 300.0, 300.0))   # box far too wide
    assert "eye distance" in geometry.implausible(points, (200.0, 80.0, 40.0, 40.0))    # box far too narrow
    flipped = 2 * points.mean(axis=0) - points          # upside down: mouth above the eyes
    assert "mouth" in geometry.implausible(flipped, box)
    assert "hull" in geometry.implausible(points, (177.0, 100.0, 93.0, 30.0))            # a sliver of the face


def _result(path, outcome, detector="", fit=None, attempt="", box=(0, 0, 1, 1)):
    return Result(ImageTask(path, "Train", 0), outcome, detector=detector, fit=fit, attempt=attempt,
                  box=box if fit is not None else None, thumb=np.zeros((4, 4), np.uint8))


def test_attempt_rates_split_the_alignment_rate():
    rs = [_result("a", ALIGNED, "frontal", 0.9, "frontal"), _result("b", ALIGNED, "frontal_padded", 0.8, "frontal_padded"),
          _result("c", ALIGNED, "profile_mirrored", 0.7, "profile"), _result("d", DROPPED),
          Result(ImageTask("e", "Train", 0), "unreadable", "empty file (0 bytes)")]
    rates = attempt_rates(rs)
    assert rates == {"frontal": 0.25, "frontal_padded": 0.25, "frontal_small": 0.0, "profile": 0.25,
                     "profile_padded": 0.0, "whole_photo": 0.0}
    assert attempt_rates([]) == dict.fromkeys(rates)


def test_sheets_mark_padded_profile_and_whole_photo_finds_and_pick_the_worst_fits():
    assert [marker(_result("p", ALIGNED, d, 0.9)) for d in
            ("frontal", "frontal_padded", "profile_mirrored", "profile_mirrored_padded", "whole_photo")] == \
        ["", "padded", "profile", "padded", "whole photo"]
    rs = [_result(f"f{i:02d}", ALIGNED, "frontal", 0.3 + i / 100) for i in range(50)]
    rs += [_result("none1", DROPPED), _result("low", DROPPED, "frontal", 0.1)]
    undetected, worst = failure_picks(rs)
    assert [r.task.path for r in undetected] == ["none1"]
    assert len(worst) == 40 and worst[0].task.path == "low" and worst[1].task.path == "f00"
    assert [r.fit for r in worst] == sorted(r.fit for r in worst)
