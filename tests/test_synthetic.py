"""The synthetic FER-2013 and SFEW sources: formats, determinism, a learnable class signal,
and faces that the real Viola-Jones detector and dlib's landmark model find."""
import hashlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from staged_fer.errors import PipelineError
from staged_fer.labels import EMOTIONS, NUM_CLASSES
from staged_fer.synthetic import audit
from staged_fer.synthetic.faces import render_face, render_patch
from staged_fer.synthetic.fer import USAGES, class_counts, synthetic_rows, write_fer_csv
from staged_fer.synthetic.sfew import FRAME_SIZES, SFEW_FOLDERS, render_scene, write_sfew_tree

COUNTS = {"Training": 30, "PublicTest": 9, "PrivateTest": 8}


def _tree_digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


# ------------------------------------------------------------------------------ FER CSV

def test_fer_csv_has_kaggles_exact_layout(tmp_path):
    path = tmp_path / "fer2013.csv"
    write_fer_csv(path, COUNTS, seed=3)
    raw = path.read_bytes()
    assert b"\r" not in raw and raw.endswith(b"\n")
    lines = raw.decode("ascii").splitlines()
    assert lines[0] == "emotion,pixels,Usage"
    rows = [line.split(",") for line in lines[1:]]
    assert len(rows) == sum(COUNTS.values())
    assert all(len(r) == 3 for r in rows)
    usages = [r[2] for r in rows]
    # Kaggle's order: one contiguous block per Usage.
    expected = [u for u in USAGES for _ in range(COUNTS[u])]
    assert usages == expected
    for emotion, pixels, _ in rows:
        assert emotion in {str(i) for i in range(NUM_CLASSES)}
        values = pixels.split(" ")
        assert len(values) == 48 * 48
        assert all(v.isdigit() and str(int(v)) == v and int(v) <= 255 for v in values)
    for usage in USAGES:
        labels = sorted({int(r[0]) for r in rows if r[2] == usage})
        assert labels == list(range(NUM_CLASSES)), usage


def test_fer_csv_reads_with_pandas_like_the_real_file(tmp_path):
    pd = pytest.importorskip("pandas")
    path = tmp_path / "fer2013.csv"
    write_fer_csv(path, COUNTS, seed=0)
    df = pd.read_csv(path)
    assert list(df.columns) == ["emotion", "pixels", "Usage"]
    assert df["emotion"].dtype == np.int64
    assert df["Usage"].value_counts().to_dict() == COUNTS


def test_fer_csv_is_deterministic_for_a_seed(tmp_path):
    a, b, c = tmp_path / "a.csv", tmp_path / "b.csv", tmp_path / "c.csv"
    write_fer_csv(a, COUNTS, seed=7)
    write_fer_csv(b, COUNTS, seed=7)
    write_fer_csv(c, COUNTS, seed=8)
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()


def test_fer_rows_do_not_depend_on_other_usage_blocks():
    small = list(synthetic_rows({"Training": 5, "PublicTest": 4, "PrivateTest": 0}, seed=1))
    large = list(synthetic_rows({"Training": 50, "PublicTest": 4, "PrivateTest": 0}, seed=1))
    # The PublicTest rows are keyed by their own position, not by the Training count.
    assert all(np.array_equal(x[1], y[1]) for x, y in zip(small[5:], large[50:]))


@pytest.mark.parametrize("n", [0, 1, 6, 7, 8, 100, 1400, 3589])
def test_class_counts_are_exact_and_mildly_imbalanced(n):
    counts = class_counts(n)
    assert counts.sum() == n
    if n >= NUM_CLASSES:
        assert counts.min() >= 1
    if n >= 100:
        assert counts.argmin() == EMOTIONS.index("Disgust")
        assert counts.argmax() == EMOTIONS.index("Happy")
        assert counts.max() / counts.min() < 5


@pytest.mark.parametrize("counts", [
    {"Training": 5, "PublicTest": 5},
    {"Training": 5, "PublicTest": 5, "PrivateTest": 5, "Test": 1},
    {"Training": -1, "PublicTest": 5, "PrivateTest": 5},
    {"Training": 2.5, "PublicTest": 5, "PrivateTest": 5},
])
def test_bad_fer_counts_fail_and_write_nothing(tmp_path, counts):
    with pytest.raises(PipelineError, match="synthetic FER counts"):
        write_fer_csv(tmp_path / "fer.csv", counts, seed=0)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("seed", [-1, 1.5, True, "0"])
def test_bad_seed_fails_and_writes_nothing(tmp_path, seed):
    with pytest.raises(PipelineError, match="seed"):
        write_fer_csv(tmp_path / "fer.csv", COUNTS, seed=seed)
    with pytest.raises(PipelineError, match="seed"):
        write_sfew_tree(tmp_path / "SFEW_2.0", 1, 1, 1, seed=seed)
    assert list(tmp_path.iterdir()) == []


def test_fer_class_signal_is_learnable_but_not_trivial():
    """A linear model on raw pixels beats chance (1/7) by far, but does not solve the task."""
    from sklearn.linear_model import RidgeClassifier
    from sklearn.preprocessing import StandardScaler

    rows = list(synthetic_rows({"Training": 560, "PublicTest": 0, "PrivateTest": 210}, seed=11))
    x = np.stack([r[1].ravel() for r in rows]).astype(np.float32) / 255
    y = np.array([r[0] for r in rows])
    train = np.array([r[2] == "Training" for r in rows])
    scaler = StandardScaler().fit(x[train])
    clf = RidgeClassifier(alpha=100.0).fit(scaler.transform(x[train]), y[train])
    acc = clf.score(scaler.transform(x[~train]), y[~train])
    assert 0.35 < acc < 0.95, acc


def test_render_face_is_48x48_grayscale_and_seeded():
    a = render_face(np.random.default_rng(5), 3)
    b = render_face(np.random.default_rng(5), 3)
    assert a.shape == (48, 48) and a.dtype == np.uint8
    assert np.array_equal(a, b)
    assert a.std() > 10  # a face, not a flat frame
    with pytest.raises(ValueError):
        render_face(np.random.default_rng(0), NUM_CLASSES)


def test_face_patch_eyes_sit_on_dark_pupils():
    patch = render_patch(np.random.default_rng(2), EMOTIONS.index("Neutral"))
    gray = cv2.cvtColor(patch.image, cv2.COLOR_BGR2GRAY)
    (lx, ly), (rx, ry) = patch.eyes
    assert lx < rx
    for x, y in patch.eyes:
        assert gray[int(round(y)), int(round(x))] < 0.5 * np.median(gray[patch.alpha > 0.9])


# ------------------------------------------------------------------------------ SFEW tree

def test_sfew_tree_layout_and_photos(tmp_path):
    root = tmp_path / "SFEW_2.0"
    write_sfew_tree(root, train_per_class=2, val_per_class=1, test=3, seed=0)
    assert sorted(p.name for p in root.iterdir()) == ["Test", "Train", "Val"]
    for split, per_class in (("Train", 2), ("Val", 1)):
        assert sorted(p.name for p in (root / split).iterdir()) == sorted(SFEW_FOLDERS)
        for folder in SFEW_FOLDERS:
            assert len(list((root / split / folder).glob("*.png"))) == per_class
    test = list((root / "Test").iterdir())
    assert len(test) == 3 and all(p.suffix == ".png" and p.is_file() for p in test)
    for path in root.rglob("*.png"):
        img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        assert img is not None and img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3
        assert (img.shape[1], img.shape[0]) in FRAME_SIZES
        # Colour photos, not gray ones stored in three channels.
        assert np.abs(img[..., 0].astype(int) - img[..., 2]).mean() > 1
    assert [p.name for p in tmp_path.iterdir()] == ["SFEW_2.0"]  # no temporary folder left


def test_sfew_tree_is_deterministic_and_replaces_an_old_tree(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    write_sfew_tree(a, 1, 1, 1, seed=4)
    write_sfew_tree(b, 1, 0, 2, seed=5)
    (b / "stale.txt").write_text("left from an earlier run")
    write_sfew_tree(b, 1, 1, 1, seed=4)
    assert _tree_digest(a) == _tree_digest(b)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b"]


def test_bad_sfew_counts_fail_and_write_nothing(tmp_path):
    with pytest.raises(PipelineError, match="val_per_class"):
        write_sfew_tree(tmp_path / "SFEW_2.0", 1, -1, 0, seed=0)
    assert list(tmp_path.iterdir()) == []


def test_scene_eyes_and_box_locate_the_main_face():
    scene = render_scene(np.random.default_rng(9), EMOTIONS.index("Happy"))
    h, w = scene.image.shape[:2]
    x, y, bw, bh = scene.box
    assert 0.15 * w - 1 <= bw <= 0.40 * w + 1
    for ex, ey in scene.eyes:
        assert x <= ex <= x + bw and y <= ey <= y + bh


def test_viola_jones_finds_and_dlib_fits_most_synthetic_faces():
    cascade, predictor = audit.frontal_cascade(), audit.landmark_predictor()
    detected = fitted = 0
    for k in range(30):
        scene = render_scene(np.random.default_rng([21, k]), k % NUM_CLASSES)
        box = audit.detect_main_face(cascade, scene)
        if box is not None:
            detected += 1
            fitted += audit.eye_fit_error(predictor, scene, box) < audit.FIT_TOLERANCE
    assert detected >= 24, detected
    assert fitted >= 0.8 * detected, (fitted, detected)
