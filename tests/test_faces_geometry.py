"""The paper's crop box from synthetic 68-point landmarks that are rotated, scaled and shifted."""
import cv2
import numpy as np
import pytest

from staged_fer.faces import geometry

R = 0.15   # eye half-width, in e2e units


def canonical_landmarks() -> np.ndarray:
    """68 points with level eyes at (-0.5, 0) and (0.5, 0), e2e = 1; hexagonal eyes (iBUG order)."""
    rng = np.random.default_rng(0)
    pts = rng.uniform(-1, 1.3, size=(68, 2))     # points the geometry must not depend on
    angles = np.radians([180, 120, 60, 0, -60, -120])   # 36/42 at the left, clockwise on screen
    for start, cx in ((36, -0.5), (42, 0.5)):
        pts[start:start + 6] = np.column_stack([cx + R * np.cos(angles), -R * np.sin(angles)])
    # The left eye is listed inner corner first (42), outer corner (45) at the right.
    pts[42:48] = np.column_stack([0.5 + R * np.cos(angles), -R * np.sin(angles)])
    return pts


def similarity(theta_deg: float, scale: float, shift) -> np.ndarray:
    t = np.radians(theta_deg)
    rot = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
    return np.column_stack([scale * rot, shift])


def transform(m: np.ndarray, pts) -> np.ndarray:
    return np.asarray(pts, float) @ m[:, :2].T + m[:, 2]


CASES = [(0.0, 60.0, (300.0, 200.0)), (17.0, 45.0, (250.5, 310.25)), (-33.0, 120.0, (300.0, 220.0)),
         (8.0, 12.0, (60.0, 40.0)), (170.0, 80.0, (320.0, 300.0))]


def test_eye_centres_are_the_means_of_six_points():
    eyes = geometry.eye_centres(canonical_landmarks())
    np.testing.assert_allclose(eyes, [[-0.5, 0.0], [0.5, 0.0]], atol=1e-12)
    with pytest.raises(ValueError):
        geometry.eye_centres(np.zeros((49, 2)))


@pytest.mark.parametrize("box_from,x0,x1", [("eye_centres", -1.12, 1.12),
                                            ("outer_corners", -0.5 - R - 0.62, 0.5 + R + 0.62)])
@pytest.mark.parametrize("theta,scale,shift", CASES)
def test_crop_box_recovered_within_a_pixel(box_from, x0, x1, theta, scale, shift):
    sim = similarity(theta, scale, shift)
    lm = transform(sim, canonical_landmarks())
    al = geometry.align(lm, 256, box_from)
    assert al.e2e == pytest.approx(scale)
    assert al.angle_deg == pytest.approx(theta if theta <= 180 else theta - 360)
    # The crop's four corners (pixel edges) map back onto the box drawn around the true face.
    inv = cv2.invertAffineTransform(al.matrix)
    edges = np.array([[-0.5, -0.5], [255.5, -0.5], [-0.5, 255.5], [255.5, 255.5]])
    expected = transform(sim, [[x0, -0.9], [x1, -0.9], [x0, 1.35], [x1, 1.35]])
    np.testing.assert_allclose(transform(inv, edges), expected, atol=1.0)
    np.testing.assert_allclose(transform(inv, edges), expected, atol=1e-6)


def test_eye_centres_box_is_square_with_eyes_at_four_tenths():
    lm = canonical_landmarks()
    x0, x1, y0, y1 = geometry.box_in_eye_frame(lm, "eye_centres")
    assert (x1 - x0, y1 - y0) == pytest.approx((2.24, 2.25))
    targets = geometry.eye_targets(lm, 256, "eye_centres")
    assert (targets[0, 1] + 0.5) / 256 == pytest.approx(0.4)
    assert (targets[:, 0] + 0.5).sum() == pytest.approx(256)    # symmetric about the centre line


def _blob_centre(img: np.ndarray, near, radius=12) -> np.ndarray:
    x, y = int(round(near[0])), int(round(near[1]))
    win = img[y - radius:y + radius + 1, x - radius:x + radius + 1].astype(float)
    ys, xs = np.mgrid[y - radius:y + radius + 1, x - radius:x + radius + 1]
    w = win.sum()
    return np.array([(xs * win).sum() / w, (ys * win).sum() / w])


@pytest.mark.parametrize("theta,scale,shift", CASES[:4])
def test_warped_photo_puts_the_eyes_where_the_formula_says(theta, scale, shift):
    """Render bright dots at the eye centres and the chin, warp, and find the dots in the crop."""
    sim = similarity(theta, scale, shift)
    lm = transform(sim, canonical_landmarks())
    chin = transform(sim, [[0.0, 1.0]])[0]
    photo = np.zeros((480, 640), np.float32)
    sigma = max(1.5, 0.04 * scale)
    yy, xx = np.mgrid[0:480, 0:640]
    for p in (*geometry.eye_centres(lm), chin):
        photo += np.exp(-((xx - p[0]) ** 2 + (yy - p[1]) ** 2) / (2 * sigma ** 2))
    photo = (photo / photo.max() * 255).astype(np.uint8)
    al = geometry.align(lm, 256, "eye_centres")
    crop = geometry.warp(photo, al.matrix, 256)
    targets = geometry.eye_targets(lm, 256, "eye_centres")
    for target in targets:
        np.testing.assert_allclose(_blob_centre(crop, target), target, atol=1.0)
    chin_target = [127.5, (1.0 + 0.9) / 2.25 * 256 - 0.5]
    np.testing.assert_allclose(_blob_centre(crop, chin_target), chin_target, atol=1.0)


def test_strong_reduction_is_prefiltered_and_keeps_geometry():
    """A face 10x larger than the crop: a 1-pixel checkerboard must average to grey, not alias."""
    sim = similarity(5.0, 1100.0, (1500.0, 1200.0))
    lm = transform(sim, canonical_landmarks())
    photo = ((np.indices((2400, 3000)).sum(axis=0) % 2) * 255).astype(np.uint8)
    crop = geometry.warp(photo, geometry.align(lm, 256, "eye_centres").matrix, 256)
    assert abs(float(crop.mean()) - 127.5) < 3 and float(crop.std()) < 10


def test_stretch_fills_the_range_and_handles_constant_crops():
    img = np.array([[50, 60], [70, 100]], np.uint8)
    out = geometry.stretch(img)
    assert out.min() == 0 and out.max() == 255 and out.dtype == np.uint8
    assert not geometry.stretch(np.full((4, 4), 77, np.uint8)).any()


def test_fallback_without_a_box_is_the_centred_square():
    m = geometry.fallback_matrix(None, (300, 500), 256)
    inv = cv2.invertAffineTransform(m)
    np.testing.assert_allclose(transform(inv, [[-0.5, -0.5], [255.5, 255.5]]), [[99.5, -0.5], [399.5, 299.5]], atol=1e-9)


def test_fallback_with_a_box_uses_the_paper_box_at_typical_eye_positions():
    box = (100.0, 50.0, 200.0, 200.0)
    inv = cv2.invertAffineTransform(geometry.fallback_matrix(box, (600, 800), 256))
    e2e = geometry.VJ_E2E * 200
    eye_mid = np.array([200.0, 50 + geometry.VJ_EYE_Y * 200])
    top_left = transform(inv, [[-0.5, -0.5]])[0]
    np.testing.assert_allclose(top_left, eye_mid + e2e * np.array([-1.12, -0.9]), atol=1e-9)
