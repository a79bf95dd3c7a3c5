"""Detection attempts: the padded retry for tight crops, profile passes only when needed, the
geometry check on landmark fits, the per-attempt rates and the sheets' markers."""
import cv2
import numpy as np
import pytest

from faces_samples import align_config, astronaut_gray
from staged_fer.faces import geometry
from staged_fer.faces.align_params import PadConfig
from staged_fer.faces.contact_sheet import MARKS, failure_picks, marker
from staged_fer.faces.detection import FaceDetector
from staged_fer.faces.landmarks import DlibLandmarker
from staged_fer.faces.pipeline import Tally
from staged_fer.faces.search import (ALIGNED, DROPPED, FALLBACK, ImageTask, Result, detect_gray, finish_one,
                                     fit_candidates)

# The astronaut's face fills this crop: no margin around it for the cascade's windows.
TIGHT = (slice(80, 172), slice(180, 266))


@pytest.fixture(scope="module")
def dlib_lm():
    return DlibLandmarker()


def _align(gray, lm, **cfg):
    cfg = align_config(**cfg)
    detector = FaceDetector(cfg.detector, cfg.pad)
    det, scene = detect_gray(ImageTask("x.png", "Train", 3), gray, detector)
    return finish_one(det, lm, cfg, detector, scene, fallback=False), det


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
    r = finish_one(det, dlib_lm, cfg, detector, scene, fallback=False)
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


@pytest.fixture(scope="module")
def template(dlib_lm):
    """The astronaut's 68 points as fractions of her detection box: a face shape to place in boxes."""
    box = (177.0, 67.0, 93.0, 93.0)
    (points, fit), = dlib_lm(astronaut_gray(), [box])
    assert fit > 0.5
    return (points - box[:2]) / box[2]


def _place(template, box):
    return np.asarray(box[:2]) + template * box[2]


def test_face_box_puts_the_eyes_where_a_frontal_detection_has_them():
    x, y, w, h = geometry.face_box(np.array([[40.0, 39.0], [76.0, 39.0]]))
    assert (x, y, w, h) == pytest.approx((8.0, 0.0, 100.0, 100.0))
    assert geometry.iou((0, 0, 10, 10), (5, 0, 10, 10)) == pytest.approx(1 / 3)
    assert geometry.iou((0, 0, 10, 10), (10, 0, 10, 10)) == 0.0


def test_a_small_face_within_a_larger_face_is_a_part_of_it(template):
    face = _place(template, (0.0, 0.0, 200.0, 200.0))
    nose_and_mouth = _place(template, (75.0, 95.0, 50.0, 50.0))   # inside the face's outline
    assert geometry.part_of(nose_and_mouth, face)
    assert not geometry.part_of(face, nose_and_mouth)
    # One face fitted twice, a little larger the second time: the same face, not a part.
    assert not geometry.part_of(face, _place(template, (-10.0, -10.0, 220.0, 220.0)))
    # A small face beside the large one (a second person): not a part, even when its box is inside.
    assert not geometry.part_of(_place(template, (0.0, 150.0, 50.0, 50.0)), face)


class _Stub:
    """A detector finding ``boxes`` on the first frontal attempt only, and a landmarker putting the
    template in any box it is given, with fits looked up by box (default: ``other``)."""

    def __init__(self, template, boxes, fits, other):
        self.template, self.boxes, self.fits, self.other = template, boxes, fits, other
        self.real = FaceDetector(align_config().detector, align_config().pad)

    def scene(self, gray):
        return self.real.scene(gray)

    def detect(self, scene, attempt):
        from staged_fer.faces.detection import Detection
        return [Detection(b, "frontal") for b in self.boxes] if attempt == "frontal" else []

    def __call__(self, gray, boxes):
        return [(_place(self.template, b), self.fits.get(tuple(round(v) for v in b), self.other)) for b in boxes]


def _stubbed(stub, gray, **cfg):
    cfg = align_config(**cfg)
    det, scene = detect_gray(ImageTask("x.png", "Train", 0), gray, stub)
    return finish_one(det, stub, cfg, stub, scene, fallback=False)


def test_a_weak_find_within_the_face_a_close_up_holds_gives_way_to_that_face(template):
    """The frontal cascade fires on the nose and mouth of a face too large for the frame; the
    landmarks fitted to the frame fit nowhere (0), but fitted again in the box their eyes imply,
    they hold the find: the find is a part, and that face is taken at min_fit."""
    gray = np.full((220, 200), 100, np.uint8)
    small = (75.0, 110.0, 50.0, 50.0)
    frame = (0, 0, 200, 220)
    stub = _Stub(template, [small], {tuple(map(round, small)): 0.35, frame: 0.0}, other=0.45)
    r = _stubbed(stub, gray)
    assert r.outcome == ALIGNED and r.attempt == "whole_photo" and r.fit == 0.45
    assert r.eyes[1, 0] - r.eyes[0, 0] > 60           # the large face's eyes, not the find's
    # Without the whole-photo fit nothing shows the find is a part: it is taken.
    r = _stubbed(stub, gray, whole_photo_fit=False)
    assert r.attempt == "frontal" and r.box == small
    # A refitted face that holds no find is no candidate, however well it fits: the find stays.
    aside = (2.0, 2.0, 40.0, 40.0)
    stub = _Stub(template, [aside], {tuple(map(round, aside)): 0.35, frame: 0.0}, other=0.9)
    r = _stubbed(stub, gray)
    assert r.attempt == "frontal" and r.box == aside and r.fit == 0.35


def test_a_rejection_is_worded_once_and_the_fallback_crop_is_the_callers_choice(template):
    """A find fitted below min_fit: its own result says why, the photo's result names it as the
    best fit in the same words, and ``fallback`` alone (not the photo's split) decides between
    no face and a crop around its box."""
    gray = np.full((220, 200), 100, np.uint8)
    find = (50.0, 60.0, 100.0, 100.0)
    stub = _Stub(template, [find], {tuple(map(round, find)): 0.2}, other=0.0)
    cfg = align_config(whole_photo_fit=False)
    det, scene = detect_gray(ImageTask("x.png", "Train", 0), gray, stub)
    (own,) = fit_candidates(scene, det.detections, "frontal", stub, cfg, det.task)
    assert (own.outcome, own.reason, own.box, own.fit) == (DROPPED, "landmark fit 0.200 below align.min_fit 0.3",
                                                           find, 0.2)
    dropped = finish_one(det, stub, cfg, stub, scene, fallback=False)
    assert (dropped.outcome, dropped.reason, dropped.face) == (DROPPED, f"best {own.reason}", None)
    cropped = finish_one(det, stub, cfg, stub, scene, fallback=True)
    assert (cropped.outcome, cropped.reason) == (FALLBACK, f"best {own.reason}; crop around the detection box")
    assert cropped.face.shape == (256, 256) and (cropped.box, cropped.fit, cropped.attempt) == (find, 0.2, "frontal")


def _result(path, outcome, detector="", fit=None, attempt="", box=(0, 0, 1, 1)):
    return Result(ImageTask(path, "Train", 0), outcome, detector=detector, fit=fit, attempt=attempt,
                  box=box if fit is not None else None, thumb=np.zeros((4, 4), np.uint8))


def test_attempt_rates_split_the_alignment_rate():
    rs = [_result("a", ALIGNED, "frontal", 0.9, "frontal"), _result("b", ALIGNED, "frontal_padded", 0.8, "frontal_padded"),
          _result("c", ALIGNED, "profile_mirrored", 0.7, "profile"), _result("d", DROPPED),
          Result(ImageTask("e", "Train", 0), "unreadable", "empty file (0 bytes)")]
    rates = Tally(rs).attempt_rates()
    assert rates == {"frontal": 0.25, "frontal_padded": 0.25, "frontal_small": 0.0, "profile": 0.25,
                     "profile_padded": 0.0, "whole_photo": 0.0}
    assert Tally([]).attempt_rates() == dict.fromkeys(rates)


def test_sheets_mark_padded_profile_and_whole_photo_finds_and_pick_the_worst_fits():
    assert [marker(_result("p", ALIGNED, d, 0.9)) for d in
            ("frontal", "frontal_padded", "profile_mirrored", "profile_mirrored_padded", "whole_photo")] == \
        ["", "padded", "profile", "profile padded", "whole photo"]
    assert set(MARKS) == {"padded", "profile", "profile padded", "whole photo"}
    rs = [_result(f"f{i:02d}", ALIGNED, "frontal", 0.3 + i / 100) for i in range(50)]
    rs += [_result("none1", DROPPED), _result("low", DROPPED, "frontal", 0.1)]
    undetected, worst = failure_picks(rs)
    assert [r.task.path for r in undetected] == ["none1"]
    assert len(worst) == 40 and worst[0].task.path == "low" and worst[1].task.path == "f00"
    assert [r.fit for r in worst] == sorted(r.fit for r in worst)
