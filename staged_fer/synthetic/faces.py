"""A procedural face renderer shared by the synthetic FER-2013 and SFEW sources.

Both synthetic datasets draw their faces here so that a model fine-tuned on one sees the
same class signal in the other, as the real FER-2013 -> SFEW transfer assumes. The
expression of each class is carried by the facial action units a human coder would look at:
the mouth (smile, open, frown, pressed, raised upper lip), the brows (raised, lowered,
inner ends up) and the eyes (wide, narrowed). Every sample also gets nuisance variation
(face shape, skin tone, lighting, expression intensity, hair, noise) so that the task is
learnable without being trivial.

The drawing keeps the contrasts the Viola-Jones cascade and landmark regressors respond
to: shadowed eye sockets and dark brows above brighter cheeks, a bright nose bridge between
the eyes, a darker mouth, and a face oval that is lit and shaded like a convex surface.

Geometry is expressed in units of the face half-width ``a`` with the origin at the centre
of the face oval and y pointing down, then scaled into a square patch. The renderer is one
module because every feature is drawn in that one frame, relative to the others (brows above
eyes, shadows under brows): split, a face's geometry would be spread over files.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from staged_fer.errors import PipelineError
from staged_fer.labels import EMOTIONS, NUM_CLASSES

# Reference patch size: blur widths are tuned at this resolution and scale with the size a
# caller asks for (twice the output for FER's 48x48, about the face's size in an SFEW frame).
PATCH = 128
# Drawing uses fixed-point coordinates for sub-pixel accuracy.
_SHIFT = 4
_ONE = 1 << _SHIFT


@dataclass(frozen=True)
class Expression:
    """Action-unit style controls; the neutral face is all zeros and unit scales."""

    brow_raise: float   # + raises both brows (surprise, fear), - lowers them (anger)
    brow_tilt: float    # + lifts the inner ends (sadness, fear), - pulls them down (anger)
    eye_open: float     # scale of the eye opening: > 1 widened, < 1 narrowed
    mouth_width: float  # scale of the mouth width
    mouth_curve: float  # + corners up (smile), - corners down (frown)
    mouth_open: float   # 0 closed ... 1 jaw dropped
    lip_press: float    # 0 normal lips ... 1 pressed thin (anger)
    sneer: float        # upper lip raised on one side and nose wrinkled (disgust)

    def toward(self, other: "Expression", t: float) -> "Expression":
        return Expression(*(s + t * (o - s) for s, o in zip(_astuple(self), _astuple(other))))


def _astuple(e: Expression) -> tuple[float, ...]:
    return (e.brow_raise, e.brow_tilt, e.eye_open, e.mouth_width, e.mouth_curve,
            e.mouth_open, e.lip_press, e.sneer)


NEUTRAL = Expression(0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0)

# Prototypes after the FACS descriptions of the basic emotions (e.g. anger: AU4 brow lowerer,
# AU7 lid tightener, AU23/24 lip press; surprise: AU1+2 brow raise, AU5 upper lid raise,
# AU26 jaw drop). Indexed by FER label.
PROTOTYPES: dict[str, Expression] = {
    "Angry":    Expression(-0.8, -1.0, 0.70, 0.85, -0.15, 0.00, 1.0, 0.0),
    "Disgust":  Expression(-0.5, -0.4, 0.60, 0.95, -0.35, 0.15, 0.3, 1.0),
    "Fear":     Expression(0.8, 0.9, 1.40, 1.20, -0.30, 0.45, 0.0, 0.0),
    "Happy":    Expression(0.1, 0.0, 0.75, 1.30, 1.00, 0.30, 0.0, 0.0),
    "Sad":      Expression(0.0, 1.0, 0.80, 0.90, -0.90, 0.00, 0.2, 0.0),
    "Surprise": Expression(1.1, 0.2, 1.50, 0.80, 0.00, 1.00, 0.0, 0.0),
    "Neutral":  NEUTRAL,
}
assert tuple(PROTOTYPES) == EMOTIONS


@dataclass(frozen=True)
class FacePatch:
    """A rendered face: colour (BGR, float32 in [0, 1]), coverage alpha and the eye centres.

    ``eyes`` holds the (x, y) pixel centres of the subject's right and left eye (image left
    and right), the ground truth a landmark fit is checked against.
    """

    image: np.ndarray
    alpha: np.ndarray
    eyes: np.ndarray


def check_seed(seed) -> int:
    """The params seed as the non-negative integer numpy's generators accept."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise PipelineError(f"params.yaml: `seed` must be a non-negative integer for the synthetic data, got {seed!r}")
    return int(seed)


def sample_expression(rng: np.random.Generator, label: int) -> Expression:
    """The class prototype at a random intensity, plus per-unit jitter."""
    if not 0 <= label < NUM_CLASSES:
        raise ValueError(f"label {label} is not one of 0..{NUM_CLASSES - 1}")
    proto = PROTOTYPES[EMOTIONS[label]]
    # Weaker displays overlap more with neutral and with each other, as real ones do; below
    # ~0.7 of the prototype the class signal is too faint for a network trained from scratch
    # on a few thousand faces (the demo's: benchmarks/bench_demo_stability.py) to pick up
    # reliably: at 0.45 its phase-1 accuracy was 0.47 against 0.53 at 0.7, same seed and schedule.
    expr = NEUTRAL.toward(proto, float(rng.uniform(0.7, 1.0)))
    jitter = rng.normal(0.0, [0.15, 0.15, 0.08, 0.06, 0.12, 0.06, 0.1, 0.08])
    values = np.asarray(_astuple(expr)) + jitter
    lo = np.array([-1.5, -1.5, 0.45, 0.6, -1.3, 0.0, 0.0, 0.0])
    hi = np.array([1.5, 1.5, 1.7, 1.5, 1.3, 1.2, 1.0, 1.2])
    return Expression(*np.clip(values, lo, hi).tolist())


def _skin(rng: np.random.Generator) -> np.ndarray:
    """A BGR skin tone between light and dark, kept bright enough to stand out when lit."""
    t = rng.beta(2.0, 2.5)
    light = np.array([0.72, 0.80, 0.93])
    dark = np.array([0.30, 0.40, 0.56])
    return (light + t * (dark - light)) * rng.uniform(0.92, 1.05, 3)


class _Canvas:
    """A float BGR patch with soft-mask blending of drawn shapes."""

    def __init__(self, img: np.ndarray):
        self.img = img
        self.height, self.width = img.shape[:2]

    def mask(self) -> np.ndarray:
        return np.zeros((self.height, self.width), np.uint8)

    def _roi(self, mask: np.ndarray, blur: float) -> tuple[slice, slice] | None:
        # Shapes are small next to the patch: blending only their blurred bounding box keeps
        # rendering fast enough for thousands of faces per second on one core.
        x, y, w, h = cv2.boundingRect(mask)
        if w == 0 or h == 0:
            return None
        pad = int(np.ceil(3 * blur)) + 1
        return (slice(max(0, y - pad), min(self.height, y + h + pad)),
                slice(max(0, x - pad), min(self.width, x + w + pad)))

    def _soft(self, mask: np.ndarray, roi, scale: float, blur: float) -> np.ndarray:
        m = mask[roi].astype(np.float32) * (scale / 255.0)
        if blur > 0:
            m = cv2.GaussianBlur(m, (0, 0), blur, borderType=cv2.BORDER_CONSTANT)
        return m[..., None]

    def blend(self, mask: np.ndarray, colour, strength: float = 1.0, blur: float = 0.0) -> None:
        roi = self._roi(mask, blur)
        if roi is None:
            return
        m = self._soft(mask, roi, strength, blur)
        colour = np.asarray(colour, np.float32).reshape(1, 1, 3)
        view = self.img[roi]
        view += m * (colour - view)

    def shade(self, mask: np.ndarray, factor: float, blur: float) -> None:
        """Multiply the pixels under a soft mask by ``factor`` (shadow < 1, highlight > 1)."""
        roi = self._roi(mask, blur)
        if roi is None:
            return
        self.img[roi] *= 1 + (factor - 1) * self._soft(mask, roi, 1.0, blur)


def _fx(points) -> np.ndarray:
    return np.round(np.asarray(points, np.float64) * _ONE).astype(np.int32)


def _ellipse(mask, centre, axes, angle=0.0, start=0.0, end=360.0, thickness=-1):
    cv2.ellipse(mask, tuple(_fx(centre)), tuple(int(v) for v in _fx(np.maximum(axes, 0.3))),
                float(angle), float(start), float(end), 255, thickness, cv2.LINE_AA, _SHIFT)


def _poly(mask, pts):
    cv2.fillPoly(mask, [_fx(pts)], 255, cv2.LINE_AA, _SHIFT)


def _line(mask, pts, thickness):
    cv2.polylines(mask, [_fx(pts)], False, 255, max(1, int(round(thickness))), cv2.LINE_AA, _SHIFT)


def _quad(p0, p1, p2, n=24) -> np.ndarray:
    """Points on the quadratic Bezier curve p0 -> p2 with control point p1."""
    t = np.linspace(0, 1, n)[:, None]
    p0, p1, p2 = (np.asarray(p, np.float64) for p in (p0, p1, p2))
    return (1 - t) ** 2 * p0 + 2 * (1 - t) * t * p1 + t ** 2 * p2


def render_patch(rng: np.random.Generator, label: int, size: int = PATCH) -> FacePatch:
    """Draw one face with the expression of ``label`` centred in a ``size`` x ``size`` patch.

    The face oval is about 0.6 of the patch wide; hair and the neck extend it. The alpha
    channel covers head and neck so that callers can composite the patch on any scene.
    """
    expr = sample_expression(rng, label)
    s = size / PATCH
    a = 0.30 * size * rng.uniform(0.93, 1.05)            # face half-width
    b = a * rng.uniform(1.18, 1.32)                      # face half-height
    cx, cy = size / 2 + rng.normal(0, 0.01 * size), 0.53 * size
    skin = _skin(rng)
    # Directional light: a linear brightness ramp across the face.
    light = rng.normal(0, 0.12, 2)

    cv_ = _Canvas(np.zeros((size, size, 3), np.float32))
    alpha = np.zeros((size, size), np.float32)

    def P(x, y):  # face units -> patch pixels
        return (cx + x * a, cy + y * a)

    # Neck and head oval.
    neck = cv_.mask()
    _poly(neck, [P(-0.55, 0.7), P(0.55, 0.7), P(0.6, 3.0), P(-0.6, 3.0)])
    cv_.blend(neck, skin * 0.75)
    head = cv_.mask()
    _ellipse(head, (cx, cy), (a, b))
    cv_.blend(head, skin)
    alpha = np.maximum(alpha, (neck.astype(np.float32) + head) / 255.0)

    # Convex shading: darker towards the rim of the oval, lit from a random side.
    yy, xx = (g.astype(np.float32) for g in np.ogrid[0:size, 0:size])
    u, v = (xx - cx) / a, (yy - cy) / b
    r2 = np.clip(u * u + v * v, 0, 1.5)
    shading = (1.0 - 0.30 * r2 ** 1.5) * (1.0 + light[0] * u + light[1] * v)
    cv_.img *= np.clip(shading, 0.4, 1.4)[..., None]

    # Hair: a darker cap over the forehead and sides (absent sometimes, as for a bald or
    # light-haired subject).
    if rng.random() < 0.85:
        hair_col = np.full(3, rng.uniform(0.05, 0.45)) * rng.uniform(0.8, 1.2, 3)
        hair = cv_.mask()
        hl = rng.uniform(0.60, 0.85)                      # hairline depth (in units of b)
        _ellipse(hair, (cx, cy - 0.08 * b), (a * 1.08, b * 1.02), 0, 180, 360)
        cut = cv_.mask()
        _ellipse(cut, (cx, cy - 0.08 * b + (1.0 - hl) * b * 0.9), (a * 0.98, b * 0.75), 0, 180, 360)
        hair = cv2.subtract(hair, cut)
        hair[int(cy - 0.08 * b):] = 0
        cv_.blend(hair, hair_col, blur=1.0 * s)
        alpha = np.maximum(alpha, hair / 255.0)

    # Face features ------------------------------------------------------------------------
    eye_dx = 0.42 * rng.uniform(0.93, 1.07)
    # Eye line and mouth: the eye-to-mouth distance about equals the eye distance, as in
    # real faces (alignment crops rely on it: the paper's box ends 1.35 eye distances below).
    eye_y = -0.22 * rng.uniform(0.9, 1.1)
    eye_w = 0.19 * rng.uniform(0.9, 1.1)
    eye_h = 0.085 * expr.eye_open
    brow_col = skin * rng.uniform(0.15, 0.35)
    dark = skin * 0.12

    # Eye sockets: the shadow under the brow ridge that Haar's eye features key on.
    sockets = cv_.mask()
    for side in (-1, 1):
        _ellipse(sockets, P(side * eye_dx, eye_y - 0.04), (0.30 * a, 0.17 * a))
    cv_.shade(sockets, 0.62, 3.0 * s)
    # Bright nose bridge and cheeks.
    bridge = cv_.mask()
    _poly(bridge, [P(-0.08, eye_y - 0.1), P(0.08, eye_y - 0.1), P(0.11, 0.30), P(-0.11, 0.30)])
    cv_.shade(bridge, 1.12, 2.0 * s)
    cheeks = cv_.mask()
    for side in (-1, 1):
        _ellipse(cheeks, P(side * 0.5, 0.16 + 0.06 * max(expr.mouth_curve, 0)), (0.22 * a, 0.15 * a))
    cv_.shade(cheeks, 1.08 + 0.06 * max(expr.mouth_curve, 0), 3.0 * s)

    # Eyes: sclera, iris, upper lid line (both eyes share each mask: they never overlap).
    eyes_px = [P(side * eye_dx, eye_y) for side in (-1, 1)]
    gaze = rng.normal(0, 0.015) * a
    white, iris, lid = cv_.mask(), cv_.mask(), cv_.mask()
    for ex, ey in eyes_px:
        _ellipse(white, (ex, ey), (eye_w * a, eye_h * a))
        _ellipse(iris, (ex + gaze, ey), (0.085 * a, min(0.085, eye_h * 1.05) * a))
        _ellipse(lid, (ex, ey), (eye_w * a, eye_h * a), 0, 180, 360, max(1, int(0.035 * a)))
    cv_.blend(white, np.minimum(skin * 1.25, 0.95), 0.9, blur=0.5 * s)
    cv_.blend(iris, dark, blur=0.4 * s)
    cv_.blend(lid, dark * 1.5, 0.9, blur=0.4 * s)

    # Brows: inner and outer ends move with raise and tilt.
    brows = cv_.mask()
    for side in (-1, 1):
        base = eye_y - 0.27 - 0.13 * expr.brow_raise
        inner = (side * 0.14, base - 0.10 * expr.brow_tilt + 0.03)
        outer = (side * 0.68, base + 0.06)
        mid = (side * 0.40, base - 0.08 - 0.04 * max(expr.brow_raise, 0))
        _line(brows, [P(*p) for p in _quad(inner, mid, outer, 16)], 0.085 * a)
    cv_.blend(brows, brow_col, 0.95, blur=0.8 * s)
    if expr.brow_tilt < -0.3:  # frown furrows between lowered brows
        furrow = cv_.mask()
        for side in (-1, 1):
            _line(furrow, [P(side * 0.05, eye_y - 0.22), P(side * 0.04, eye_y - 0.06)], 0.025 * a)
        cv_.blend(furrow, dark * 2, min(1.0, -expr.brow_tilt - 0.3), blur=0.6 * s)

    # Nose: tip shadow and nostrils; a sneer wrinkles the bridge.
    nose = cv_.mask()
    _ellipse(nose, P(0, 0.26), (0.15 * a, 0.05 * a))
    cv_.shade(nose, 0.75, 1.2 * s)
    nostrils = cv_.mask()
    for side in (-1, 1):
        _ellipse(nostrils, P(side * 0.09, 0.29 - 0.04 * expr.sneer), (0.05 * a, 0.03 * a))
    cv_.blend(nostrils, dark * 1.5, 0.8, blur=0.6 * s)
    if expr.sneer > 0.3:
        wrinkle = cv_.mask()
        for k in range(3):
            y = eye_y + 0.12 + 0.07 * k
            _line(wrinkle, [P(-0.12, y), P(0, y + 0.02), P(0.12, y)], 0.02 * a)
        cv_.blend(wrinkle, dark * 2.5, min(1.0, expr.sneer - 0.2), blur=0.6 * s)

    # Mouth.
    my = eye_y + 0.84 * rng.uniform(0.94, 1.06)
    hw = 0.36 * expr.mouth_width
    lift = 0.16 * expr.mouth_curve
    # Disgust raises one side of the upper lip (which side varies).
    sneer_side = 1 if rng.random() < 0.5 else -1
    corners = [(-hw, my - lift - 0.10 * expr.sneer * (sneer_side < 0)),
               (hw, my - lift - 0.10 * expr.sneer * (sneer_side > 0))]
    open_ = 0.32 * expr.mouth_open
    lip = (0.07 * (1 - 0.7 * expr.lip_press))
    upper_mid = (0.0, my - 0.35 * open_ - 0.5 * lift - 0.08 * expr.sneer)
    lower_mid = (0.0, my + 0.65 * open_ + 0.5 * lift + 0.02)
    upper = _quad(corners[0], (upper_mid[0], 2 * upper_mid[1] - 0.5 * (corners[0][1] + corners[1][1])), corners[1])
    lower = _quad(corners[1], (lower_mid[0], 2 * lower_mid[1] - 0.5 * (corners[0][1] + corners[1][1])), corners[0])
    lips = cv_.mask()
    outer = np.concatenate([upper + [0, -lip], lower + [0, lip * 1.3]])
    _poly(lips, [P(*p) for p in outer])
    lip_col = skin * np.array([0.62, 0.62, 0.80])
    cv_.blend(lips, lip_col, 0.9, blur=0.6 * s)
    inside = cv_.mask()
    if open_ > 0.02:
        _poly(inside, [P(*p) for p in np.concatenate([upper, lower])])
        cv_.blend(inside, dark * 0.6, blur=0.5 * s)
        if expr.mouth_curve > 0.4:  # a broad smile shows the upper teeth
            teeth = cv_.mask()
            _poly(teeth, [P(*p) for p in np.concatenate([upper, upper[::-1] + [0, 0.45 * open_ + 0.02]])])
            teeth = cv2.bitwise_and(teeth, inside)
            cv_.blend(teeth, np.full(3, 0.85), 0.9, blur=0.4 * s)
    else:
        _line(inside, [P(*p) for p in upper], 0.035 * a)
        cv_.blend(inside, dark * 1.2, blur=0.5 * s)

    image = np.clip(cv_.img, 0, 1).astype(np.float32)
    return FacePatch(image=image, alpha=np.clip(alpha, 0, 1).astype(np.float32), eyes=np.asarray(eyes_px, np.float32))


def background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Clutter: a colour gradient and a few soft-edged shapes (BGR float32 in [0, 1])."""
    yy, xx = (g.astype(np.float32) for g in np.ogrid[0:height, 0:width])
    c0, c1 = rng.uniform(0.05, 0.55, 3), rng.uniform(0.05, 0.55, 3)
    d = rng.normal(size=2)
    t = (xx * d[0] / width + yy * d[1] / height)
    t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    canvas = _Canvas((c0 + t[..., None] * (c1 - c0)).astype(np.float32))
    for _ in range(int(rng.integers(2, 7))):
        m = canvas.mask()
        centre = (int(rng.uniform(0, width)), int(rng.uniform(0, height)))
        if rng.random() < 0.5:
            axes = (int(rng.uniform(0.05, 0.3) * width), int(rng.uniform(0.05, 0.3) * height))
            cv2.ellipse(m, centre, axes, float(rng.uniform(0, 180)), 0, 360, 255, -1, cv2.LINE_AA)
        else:
            w, h = rng.uniform(0.05, 0.4) * width, rng.uniform(0.05, 0.4) * height
            cv2.rectangle(m, centre, (int(centre[0] + w), int(centre[1] + h)), 255, -1, cv2.LINE_AA)
        canvas.blend(m, rng.uniform(0.0, 0.6, 3), 0.8, blur=max(1.0, 0.01 * width))
    return canvas.img


def render_face(rng: np.random.Generator, label: int, size: int = 48) -> np.ndarray:
    """A FER-2013-like face: grayscale ``size`` x ``size`` uint8, loosely cropped and unaligned.

    FER-2013's crops centre the face and fill most of the frame with it, with small shifts,
    scale changes and in-plane tilts, so the same jitter is applied here.
    """
    # Twice the output resolution is enough supersampling for a 48x48 face.
    n = 2 * size
    patch = render_patch(rng, label, n)
    bg = cv2.resize(background(rng, size, size), (n, n), interpolation=cv2.INTER_LINEAR)
    img = patch.image * patch.alpha[..., None] + bg * (1 - patch.alpha[..., None])
    angle = rng.normal(0, 5.0)
    scale = rng.uniform(1.15, 1.45)  # FER crops cut at the hairline and chin
    shift = rng.normal(0, 0.03 * n, 2)
    M = cv2.getRotationMatrix2D((n / 2, n * 0.55), angle, scale)
    M[:, 2] += shift + [0, -0.05 * n * scale]
    img = cv2.warpAffine(img, M, (n, n), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    gray = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    gray = cv2.resize(gray, (size, size), interpolation=cv2.INTER_AREA)
    # Exposure and contrast vary across FER's web images; then sensor grain.
    gray = (gray - gray.mean()) * rng.uniform(0.7, 1.3) + gray.mean() * rng.uniform(0.75, 1.25)
    gray = gray + rng.normal(0, rng.uniform(0.01, 0.04), gray.shape)
    return np.clip(np.round(gray * 255), 0, 255).astype(np.uint8)
