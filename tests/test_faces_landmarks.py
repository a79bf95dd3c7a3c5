"""face-alignment's FAN for real, offline: the installed library runs end to end on a randomly
initialised FAN(4) saved where and how it loads its weights (conftest's ``fan_weights``), so
the plumbing is tested, not the accuracy. dlib's backend runs for real in test_faces_real.py."""
import urllib.error

import numpy as np
import pytest

from faces_samples import align_config, astronaut_gray, write_png
from staged_fer.errors import PipelineError
from staged_fer.faces import landmarks
from staged_fer.faces.landmarks import fan_fit

# Our boxes (x, y, w, h) on the astronaut photo: her face, and a non-integer one half off the image.
BOXES = [(170.25, 60.5, 120.0, 130.75), (-30.5, 400.0, 90.0, 80.0)]


class Recorder:
    """Wraps a function of the library and records its arguments."""

    def __init__(self, fn):
        self.fn, self.calls = fn, []

    def __call__(self, *args, **kwargs):
        self.calls.append(args)
        return self.fn(*args, **kwargs)


def forward_sizes(fan) -> tuple[list[int], object]:
    """Batch sizes of the FAN network's forward passes from now on (and the hook to remove)."""
    sizes = []
    hook = fan.model.face_alignment_net.register_forward_hook(lambda m, args, out: sizes.append(len(args[0])))
    return sizes, hook


def test_fit_is_the_mean_of_the_peaks_clipped_to_0_1():
    assert fan_fit(np.array([-0.5, 1.7, 0.4, 0.5])) == pytest.approx((0 + 1 + 0.4 + 0.5) / 4)
    assert fan_fit(np.full(68, 2.5)) == 1.0 and fan_fit(np.full(68, -1.0)) == 0.0


@pytest.fixture(scope="module")
def library_run(fan_cpu):
    """The library's own get_landmarks_from_image on BOXES, with the crops it took recorded."""
    import face_alignment.api
    gray = astronaut_gray()
    rgb = np.repeat(gray[:, :, None], 3, axis=2)
    faces = [np.array([x, y, x + w, y + h], dtype=np.float64) for x, y, w, h in BOXES]
    with pytest.MonkeyPatch.context() as mp:
        crop = Recorder(face_alignment.api.crop)
        mp.setattr(face_alignment.api, "crop", crop)
        points, scores, _ = fan_cpu.model.get_landmarks_from_image(rgb, detected_faces=faces,
                                                                   return_landmark_score=True)
    return gray, points, scores, crop.calls


def test_points_lie_in_the_crop_window_the_library_derives_from_each_box(library_run):
    _, points, scores, crops = library_run
    assert len(points) == len(scores) == len(crops) == 2
    for pts, (_, center, scale), (x, y, w, h) in zip(points, crops, BOXES):
        assert pts.shape == (68, 2)
        # The window: a square of side 200 * scale around the centre, scale = (w + h) / 195.
        assert scale == pytest.approx((w + h) / 195) and center[0] == pytest.approx(x + w / 2)
        assert center[1] == pytest.approx(y + h / 2 - 0.12 * h)
        half = 100 * scale
        # Points come from 64x64 heatmap cells mapped back and truncated to whole pixels.
        assert (pts >= center - half - 1).all() and (pts <= center + half + 1).all()
    # The heatmap peaks are not probabilities: random weights put them well outside [0, 1].
    raw = np.concatenate(scores)
    assert raw.min() < 0 or raw.max() > 1


def test_our_batched_fan_is_the_library_point_for_point(fan_cpu, library_run, monkeypatch):
    """The faces of two images share one pass and come out exactly as the library gives them."""
    gray, points, scores, _ = library_run
    monkeypatch.setattr(fan_cpu, "batch_size", 2)
    sizes, hook = forward_sizes(fan_cpu)
    # Float64 boxes of two images (here the same photo twice), an item with nothing to fit
    # between them, and an image without boxes after them.
    items = [("a", (gray, BOXES[:1])), ("skip", None), ("b", (gray, BOXES[1:])), ("c", (gray, []))]
    try:
        out = list(fan_cpu.in_batches(items, lambda item: item[1]))
        assert [item[0] for item, _ in out] == ["a", "skip", "b", "c"] and out[1][1] is None
        fitted = out[0][1](*items[0][1]) + out[2][1](*items[2][1]) + out[3][1](gray, [])
    finally:
        hook.remove()
    assert sizes == [2]                       # one pass for both images; the gathered results reused
    assert len(fitted) == 2
    for (pts, fit), want_pts, want_scores in zip(fitted, points, scores):
        assert pts.dtype == np.float64 and pts.shape == (68, 2)
        np.testing.assert_array_equal(pts, want_pts)
        assert fit == fan_fit(want_scores) and 0.0 <= fit <= 1.0


def test_no_boxes_runs_no_pass(fan_cpu):
    sizes, hook = forward_sizes(fan_cpu)
    try:
        assert fan_cpu(np.zeros((10, 10), np.uint8), []) == [] and sizes == []
    finally:
        hook.remove()


def test_pipeline_rejects_on_the_real_fan_fit(tmp_path, fan_cpu):
    """min_fit above any fit: Train drops the face, Val falls back to a crop; the accepting side
    runs through dvc in test_align_fan_dvc.py."""
    from staged_fer.data.target import scan_sfew
    from staged_fer.faces.pipeline import align_all
    face = astronaut_gray()[20:280, 120:340]   # one detection
    write_png(tmp_path / "Train" / "Happy" / "a.png", face)
    write_png(tmp_path / "Val" / "Sad" / "b.png", face)
    results = align_all(scan_sfew(tmp_path).tasks, tmp_path, align_config(landmarks="fan", min_fit=1.0, confident_fit=1.0,
                                                                   whole_photo_min_fit=1.0), fan=fan_cpu)
    assert [r.outcome for r in results] == ["dropped", "fallback"]
    assert all(0.0 <= r.fit < 1.0 for r in results) and results[0].fit == results[1].fit
    assert f"best landmark fit {results[1].fit:.3f} below align.min_fit 1.0" in results[1].reason


def test_offline_without_cached_weights_says_which_file_to_place_where(torch_home, monkeypatch):
    import face_alignment.utils

    def offline(url, dst, *args, **kwargs):
        raise urllib.error.URLError("no network")
    monkeypatch.setattr(face_alignment.utils, "download_url_to_file", offline)
    url, path = landmarks.fan_weights_path()
    assert path == torch_home / "2DFAN4-11f355bf06.pth.tar"
    with pytest.raises(PipelineError) as err:
        landmarks.load_fan("cpu")
    msg = str(err.value)
    assert str(path) in msg and url in msg and "align.landmarks: dlib" in msg and "\n" not in msg


def test_a_renamed_weight_url_is_one_line(monkeypatch):
    import face_alignment.api
    monkeypatch.delitem(face_alignment.api.models_urls, "2DFAN-4")
    with pytest.raises(PipelineError) as err:
        landmarks.load_fan("cpu")
    msg = str(err.value)
    assert "'2DFAN-4'" in msg and "face-alignment==1.5.0" in msg and "\n" not in msg


def test_a_changed_loader_is_one_line(fan_weights, monkeypatch):
    import face_alignment

    def changed(*args, **kwargs):
        raise TypeError("__init__() got an unexpected keyword argument 'compile'\n  (see the changelog)")
    monkeypatch.setattr(face_alignment, "FaceAlignment", changed)
    with pytest.raises(PipelineError) as err:
        landmarks.load_fan("cpu")
    msg = str(err.value)
    assert str(fan_weights) in msg and "unexpected keyword argument 'compile'" in msg and "\n" not in msg


def test_weights_in_another_format_are_one_line(torch_home):
    import torch
    torch_home.mkdir(parents=True)
    torch.save({"conv1.weight": torch.zeros(1)}, torch_home / "2DFAN4-11f355bf06.pth.tar")
    with pytest.raises(PipelineError) as err:
        landmarks.load_fan("cpu")
    assert "cannot load the FAN weights" in str(err.value) and "\n" not in str(err.value)
