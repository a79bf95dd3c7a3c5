"""docs/reference.md is what tools/reference.py writes from dvc.yaml and params.yaml."""
from __future__ import annotations

import textwrap

from tests.dvc_project import ROOT
from tools.reference import PAGE, read_params, render


def test_the_committed_reference_page_is_what_the_tool_writes():
    assert PAGE.read_text() == render(), "docs/reference.md is out of date: run `make docs`"


def test_every_params_key_is_on_the_page_with_its_comment_and_readers():
    page = render()
    for param in read_params():
        assert f"`{param.key}`" in page
    assert ("| `phase1.lr_step` | `10` | train_phase1 | lr is divided by 10 every lr_step epochs |"
            in page.splitlines())
    assert "| params | `seed`, `target`, `align` |" in page   # align_target's row


def test_read_params_follows_sections_flow_values_and_continued_comments(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text(textwrap.dedent("""\
        # header
        seed: 0            # one seed
        align:             # the aligner
          size: 256
          detector:
            max_side: 640  # long side
                           # of the working copy
          url: "http://x#y"  # a '#' in quotes is no comment
        schemes:
          fer28: {train: [a], val: [b]}   # inline
        """))
    got = [(p.key, p.value, p.block, p.comment) for p in read_params(path)]
    assert got == [
        ("seed", 0, False, "one seed"),
        ("align", {"size": 256, "detector": {"max_side": 640}, "url": "http://x#y"}, True, "the aligner"),
        ("align.size", 256, False, ""),
        ("align.detector", {"max_side": 640}, True, ""),
        ("align.detector.max_side", 640, False, "long side of the working copy"),
        ("align.url", "http://x#y", False, "a '#' in quotes is no comment"),
        ("schemes", {"fer28": {"train": ["a"], "val": ["b"]}}, True, ""),
        ("schemes.fer28", {"train": ["a"], "val": ["b"]}, False, "inline"),
    ]
