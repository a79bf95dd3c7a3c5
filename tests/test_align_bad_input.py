"""Bad files and odd images are logged with their reason, never crash, never get a wrong label."""
import cv2
import numpy as np
import pytest

from faces_samples import align_config, huge_with_face, write_png, write_sfew_fixture
from staged_fer.data.target import scan_sfew
from staged_fer.errors import PipelineError
from staged_fer.faces.decode import Unreadable, decode_gray, to_gray8
from staged_fer.faces.blocks import kept
from staged_fer.faces import pipeline
from staged_fer.faces.pipeline import align_all


@pytest.fixture(scope="module")
def tree(module_tmp):
    root = module_tmp("sfew")
    return root, write_sfew_fixture(root)


@pytest.fixture(scope="module")
def aligned(tree):
    root, _ = tree
    scan = scan_sfew(root)
    return scan, align_all(scan.tasks, root, align_config(workers=1))


def test_every_file_gets_its_expected_outcome_and_reason(tree, aligned):
    _, expected = tree
    scan, results = aligned
    got = {r.task.path: r for r in results}
    assert sorted(got) == sorted(expected)          # hidden files are ignored, nothing else is
    for path, (outcome, _, reason) in expected.items():
        r = got[path]
        assert r.outcome == outcome, (path, r.outcome, r.reason)
        assert reason.lower() in r.reason.lower(), (path, r.reason)
    assert [r.task.path for r in results] == sorted(got)


def test_labels_come_from_the_emotion_folder_only(tree, aligned):
    root, expected = tree
    scan, results = aligned
    stored = [r for r in results if kept(r)]
    for r in stored:
        assert r.task.label == expected[r.task.path][1] and r.task.split == r.task.path.split("/")[0]
        assert r.face.shape == (256, 256) and r.face.dtype == np.uint8
    paths = [r.task.path for r in stored]
    assert "Train/notes.txt" not in paths
    # Val keeps its fallback crop so every evaluation image gets a prediction; Train never does.
    assert {r.outcome for r in stored if r.task.split == "Train"} == {"aligned"}
    assert "Val/Neutral/tiny.png" in paths


def test_huge_photo_is_found_through_the_shrunk_copy_and_boxed_in_full_resolution(tmp_path):
    """8000x8000: detected on the shrunk copy, boxed, fitted and cropped at full resolution."""
    write_png(tmp_path / "Val" / "Surprise" / "huge.png", huge_with_face())
    (tmp_path / "Train").mkdir()
    scan = scan_sfew(tmp_path)
    r, = align_all(scan.tasks, tmp_path, align_config(workers=1))
    assert r.outcome == "aligned" and r.shape == (8000, 8000)
    x, y, w, h = r.box
    # The astronaut's face box (177, 67, 93, 93) scaled 8x and moved to (2000, 1000).
    assert abs(x - (2000 + 8 * 177)) < 80 and abs(y - (1000 + 8 * 67)) < 80 and abs(w - 8 * 93) < 120
    assert r.face.shape == (256, 256) and r.fit >= 0.3


def test_pool_returns_the_serial_results_in_task_order(tree, aligned, monkeypatch):
    """Two worker processes on a few of the files, handed over in windows of two: same
    outcomes, same pixels, same order."""
    monkeypatch.setattr(pipeline, "IN_FLIGHT", 2)
    root, _ = tree
    scan, serial = aligned
    picked = [t for t in scan.tasks if t.path in ("Test/gray.png", "Train/Angry/zero.png", "Val/Neutral/tiny.png")]
    pooled = align_all(picked, root, align_config(workers=2))
    by_path = {r.task.path: r for r in serial}
    assert [r.task.path for r in pooled] == [t.path for t in picked]
    for r in pooled:
        s = by_path[r.task.path]
        assert (r.outcome, r.reason, r.box, r.fit) == (s.outcome, s.reason, s.box, s.fit)
        assert (r.face is None and s.face is None) or (r.face == s.face).all()


def test_empty_folders_are_reported(aligned):
    scan, _ = aligned
    assert "Val/Disgust" in scan.empty and "Train/Surprise" in scan.empty and "Train" not in scan.empty


def test_unknown_emotion_folder_stops_with_the_expected_names(tmp_path):
    (tmp_path / "Train" / "Happy").mkdir(parents=True)
    (tmp_path / "Train" / "Joy").mkdir()
    (tmp_path / "Val").mkdir()
    with pytest.raises(PipelineError, match="unknown emotion folder 'Joy'.*Angry, Disgust, Fear, Happy, Sad, Surprise, Neutral"):
        scan_sfew(tmp_path)


def test_missing_root_or_split_names_the_key_and_layout(tmp_path):
    with pytest.raises(PipelineError, match="target.root: folder .*nope not found.*target.source: synthetic"):
        scan_sfew(tmp_path / "nope")
    (tmp_path / "Train").mkdir()
    with pytest.raises(PipelineError, match="Val not found"):
        scan_sfew(tmp_path)


def test_empty_split_folders_are_not_fatal_but_an_empty_tree_is(tmp_path):
    (tmp_path / "Train" / "Happy").mkdir(parents=True)
    (tmp_path / "Val").mkdir()
    with pytest.raises(PipelineError, match="no files under"):
        scan_sfew(tmp_path)
    (tmp_path / "Train" / "Happy" / "a.png").write_bytes(b"")
    scan = scan_sfew(tmp_path)
    assert "Val" in scan.empty and [t.label for t in scan.tasks] == [3]


@pytest.mark.parametrize("pixels,expected", [
    (np.array([[0, 65535], [257, 32896]], np.uint16), [[0, 255], [1, 128]]),
    (np.zeros((2, 2, 4), np.uint8) + np.array([0, 0, 255, 7], np.uint8), [[76, 76], [76, 76]]),
    (np.zeros((2, 2, 1), np.uint8) + 9, [[9, 9], [9, 9]]),
    (np.array([[0.0, 1.0], [0.5, np.nan]], np.float32), [[0, 255], [128, 0]]),
])
def test_depths_and_channels_convert_to_8_bit_gray(pixels, expected):
    np.testing.assert_array_equal(to_gray8(pixels), expected)


def test_decoder_reasons():
    png = cv2.imencode(".png", np.arange(64 * 64, dtype=np.uint16).reshape(64, 64))[1].tobytes()
    for data, reason in ((b"", "empty"), (png[:-40], "corrupt or truncated"), (b"hello", "not an image")):
        with pytest.raises(Unreadable, match=reason):
            decode_gray(data)
