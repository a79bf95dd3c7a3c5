"""The worker pool that align_target and predict share: results in item order from worker
processes or from this one, OpenCV's threads given back, a worker's error raised here."""
import operator

import cv2
import pytest

from staged_fer.faces.pool import WorkerPool


@pytest.mark.parametrize("processes", [1, 2])
def test_results_come_back_in_item_order_and_opencv_gets_its_threads_back(processes):
    items = [(i, "x") for i in range(40)]
    threads = cv2.getNumThreads()
    with WorkerPool(processes, operator.itemgetter, (0,)) as pool:
        first, second = pool.imap(items[:25], 3), pool.imap(items[25:], 3)
        assert list(first) + list(second) == list(range(40))
        # One worker is one core, also in this process.
        assert cv2.getNumThreads() == (1 if processes == 1 else threads)
    assert cv2.getNumThreads() == threads


@pytest.mark.parametrize("processes", [1, 2])
def test_a_workers_error_is_raised_here(processes):
    with pytest.raises(IndexError):
        with WorkerPool(processes, operator.itemgetter, (0,)) as pool:
            list(pool.imap([(1,), ()], 1))


def test_imap_outside_the_with_block_is_refused():
    with pytest.raises(RuntimeError, match="outside its `with` block"):
        WorkerPool(1, operator.itemgetter, (0,)).imap([(1,)], 1)
