"""The FAN wrapper (with a stand-in model: FAN's weights cannot be fetched offline) and its
offline error; dlib's backend runs for real in test_faces_real.py."""
import urllib.error

import numpy as np
import pytest

from staged_fer.errors import PipelineError
from staged_fer.faces import landmarks
from staged_fer.faces.landmarks import FanLandmarker


class FakeFan:
    """Records what face_alignment.FaceAlignment.get_landmarks_from_image would be given."""

    def __init__(self, scores):
        self.scores = scores
        self.calls = []

    def get_landmarks_from_image(self, image, detected_faces=None, return_landmark_score=False):
        self.calls.append((image, detected_faces, return_landmark_score))
        pts = [np.tile([[f[0], f[1]]], (68, 1)) + np.arange(68)[:, None] for f in detected_faces]
        return pts, [np.asarray(s, dtype=np.float32) for s in self.scores[:len(detected_faces)]], None


def test_fan_gets_float64_corner_boxes_on_an_rgb_image_and_fit_is_the_mean_score():
    fake = FakeFan([np.full(68, 0.8), np.linspace(0.0, 0.4, 68)])
    gray = np.arange(30 * 40, dtype=np.uint8).reshape(30, 40)
    out = FanLandmarker(fake)(gray, [(1.0, 2.0, 10.0, 12.0), (5.5, 6.0, 8.0, 8.0)])
    image, faces, with_scores = fake.calls[0]
    assert len(fake.calls) == 1 and with_scores          # one batch for all the image's boxes
    assert image.shape == (30, 40, 3) and (image[:, :, 0] == gray).all() and (image[:, :, 2] == gray).all()
    assert all(f.dtype == np.float64 for f in faces)
    np.testing.assert_array_equal(faces[0], [1.0, 2.0, 11.0, 14.0])
    np.testing.assert_array_equal(faces[1], [5.5, 6.0, 13.5, 14.0])
    assert out[0][0].shape == (68, 2) and out[0][0][0].tolist() == [1.0, 2.0]
    assert out[0][1] == pytest.approx(0.8) and out[1][1] == pytest.approx(0.2)


def test_fan_without_boxes_is_not_called():
    fake = FakeFan([])
    assert FanLandmarker(fake)(np.zeros((10, 10), np.uint8), []) == [] and not fake.calls


def test_fan_returning_fewer_faces_than_boxes_is_an_error():
    fake = FakeFan([np.ones(68)])
    with pytest.raises(RuntimeError, match="1 faces for 2 boxes"):
        FanLandmarker(fake)(np.zeros((10, 10), np.uint8), [(0, 0, 5, 5), (1, 1, 5, 5)])


def test_fan_offline_without_cached_weights_says_which_file_to_place_where(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    import face_alignment.utils

    def offline(url, dst, *args, **kwargs):
        raise urllib.error.URLError("no network")
    monkeypatch.setattr(face_alignment.utils, "download_url_to_file", offline)
    url, path = landmarks.fan_weights_path()
    assert path == tmp_path / "torch" / "hub" / "checkpoints" / "2DFAN4-11f355bf06.pth.tar"
    with pytest.raises(PipelineError) as err:
        landmarks.load_fan("cpu")
    msg = str(err.value)
    assert str(path) in msg and url in msg and "align.landmarks: dlib" in msg


class DlibBackedFan:
    """A FAN stand-in that finds real landmarks (with dlib) and reports a fixed confidence."""

    def __init__(self, score):
        from staged_fer.faces.landmarks import DlibLandmarker
        self.dlib = DlibLandmarker()
        self.score = score

    def get_landmarks_from_image(self, image, detected_faces=None, return_landmark_score=False):
        boxes = [(f[0], f[1], f[2] - f[0], f[3] - f[1]) for f in detected_faces]
        pts = [p for p, _ in self.dlib(np.ascontiguousarray(image[:, :, 0]), boxes)]
        return pts, [np.full(68, self.score, np.float32) for _ in pts], None


@pytest.mark.parametrize("score,train,val", [(0.9, "aligned", "aligned"), (0.1, "dropped", "fallback")])
def test_fan_path_detects_in_workers_and_fits_with_fan_confidence(tmp_path, score, train, val):
    from faces_samples import align_config, astronaut_gray, write_png
    from staged_fer.data.emotiw import scan_sfew
    from staged_fer.faces.pipeline import align_all
    write_png(tmp_path / "Train" / "Happy" / "a.png", astronaut_gray())
    write_png(tmp_path / "Val" / "Sad" / "b.png", astronaut_gray())
    results = align_all(scan_sfew(tmp_path).tasks, tmp_path, align_config(landmarks="fan"),
                        fan=FanLandmarker(DlibBackedFan(score)))
    assert [r.outcome for r in results] == [train, val]
    assert all(r.fit == pytest.approx(score) for r in results)
    assert "below align.min_fit" in results[1].reason or results[1].outcome == "aligned"
