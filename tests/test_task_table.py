"""The target set's photos as a table: read like the list of ImageTasks it replaces."""
from __future__ import annotations

import numpy as np

from staged_fer.faces.search import ImageTask
from staged_fer.faces.task_table import TaskTable
from staged_fer.labels import UNLABELED


def test_a_union_is_sorted_as_python_sorts_the_paths_and_reads_back_each_task():
    parts = [TaskTable.of(["Train/Sad/b.png", "Train/Sad/ä.png", "Train/Sad/Z.png"], "Train", 4),
             TaskTable.of(["Train/a.png"], "Train", UNLABELED, skip="outside the class folders"),
             TaskTable.of([], "Val", 3),
             TaskTable.of(["Test/日本.png", "Test/x.png"], "Test", UNLABELED)]
    expected = sorted((t for part in parts for t in part), key=lambda t: t.path)
    table = TaskTable.sorted_union(parts)
    assert list(table) == expected and len(table) == 6
    assert [table[i] for i in range(len(table))] == expected
    assert table[3] == ImageTask("Train/Sad/b.png", "Train", 4)
    assert table[-1] == ImageTask("Train/a.png", "Train", UNLABELED, "outside the class folders")


def test_a_slice_or_a_selection_of_rows_is_a_table_of_those_tasks():
    table = TaskTable.sorted_union([TaskTable.of([f"Val/Sad/{i:02d}.png" for i in range(10)], "Val", 4)])
    assert isinstance(table[2:5], TaskTable) and list(table[2:5]) == list(table)[2:5]
    rows = np.array([7, 0, 9])
    assert list(table[rows]) == [table[7], table[0], table[9]]
    assert table[rows] == table[rows] and table[rows] != table[2:5]
    assert len(TaskTable.sorted_union([])) == 0
