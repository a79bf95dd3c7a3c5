"""The page a plain `dvc plots show` writes, opened in headless Chromium: confusion matrices
and training curves must render, each once, with no error or warning, and with vega,
vega-lite and vega-embed inlined by the project's page template (no CDN).

Set-up (once): `apt-get install -y chromium`; `make setup` builds the template.
"""
from __future__ import annotations

import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from tests.dvc_project import ROOT, DvcProject
from tools import plots_template

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (apt-get install -y chromium)"),
]


class Views(HTMLParser):
    """Per DVC plot div (by id): whether vega-embed finished, and how many marks its SVG draws;
    and the text of every error and warning the page reported."""

    VOID = {"meta", "br", "img", "input", "link", "hr", "area", "base", "col", "source", "wbr"}

    def __init__(self, ids):
        super().__init__()
        self.ids = set(ids)
        self.views: dict[str, dict] = {}
        self.errors: list[str] = []
        self.warnings: list[str] = []
        # per open element: the plot id it belongs to, and whether it lies in a data-mark group
        self._stack: list[tuple[str | None, bool]] = []
        self._collect: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        current, in_marks = self._stack[-1] if self._stack else (None, False)
        if tag == "div" and a.get("id") in self.ids:
            current = a["id"]
            self.views[current] = {"rendered": "data-rendered" in a, "marks": 0}
        elif tag == "g" and "role-mark" in (a.get("class") or "").split():
            in_marks = True   # vega's SVG group of a data mark (axes and legends have other roles)
        elif tag in ("path", "circle", "rect") and current is not None and in_marks:
            self.views[current]["marks"] += 1
        if tag == "pre":
            self._collect = {"page-error": self.errors, "page-warning": self.warnings}.get(a.get("class"))
        if tag not in self.VOID:
            self._stack.append((current, in_marks))

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag not in self.VOID:
            self._stack.pop()

    def handle_endtag(self, tag):
        if tag not in self.VOID and self._stack:
            self._stack.pop()
        if tag == "pre":
            self._collect = None

    def handle_data(self, data):
        if self._collect is not None:
            self._collect.append(data)


@pytest.fixture(scope="module")
def plots_page(tmp_path_factory):
    """A repository with the project's dvc.yaml, plot data from the project's own writers,
    and the page `dvc plots show` makes of it."""
    from staged_fer.evaluation.confusion import dvc_rows
    from staged_fer.io import write_json
    from staged_fer.training.live import LiveLog

    plots_template.write()   # what `make setup` does; nothing when the template is current
    path = tmp_path_factory.mktemp("plots")
    for name in ("dvc.yaml", "params.yaml"):
        shutil.copy2(ROOT / name, path / name)
    project = DvcProject(path)
    project.run("git", "init", "-q", "-b", "main")
    project.dvc("init", "-q")
    # The project's DVC config and the page template `make setup` wrote, as in a checkout.
    shutil.copy2(ROOT / ".dvc" / "config", path / ".dvc" / "config")
    (path / ".dvc" / "plots").mkdir()
    shutil.copy2(plots_template.DEFAULT_OUT, path / ".dvc" / "plots" / "template.html")
    rng = np.random.default_rng(0)
    confusions = ("fer_public_test", "fer_private_test", "target_val", "target_val_phase1")
    for key in confusions:
        truth = rng.integers(0, 7, 60)
        predicted = np.where(rng.random(60) < 0.5, truth, rng.integers(0, 7, 60))
        write_json(path / "plots" / "confusion" / f"{key}.json", dvc_rows(truth, predicted))
    for stage in ("phase1", "phase2"):
        live = LiveLog(path / "dvclive" / stage, synthetic=True)
        for epoch in range(4):
            live.log_epoch({"train_loss": 2.0 / (epoch + 1), "train_acc": 0.2 + 0.1 * epoch,
                            "val_loss": 2.2 / (epoch + 1), "val_acc": 0.18 + 0.08 * epoch, "lr": 0.001})
        live.finish(3, 0.42)
    project.dvc("plots", "show")   # a plain call: the page goes to dvc_plots/index.html
    page = path / "dvc_plots" / "index.html"
    return page.read_text(), dump_dom(page), confusions


def dump_dom(page: Path) -> str:
    """The DOM after load and 20 s of virtual time (vega-embed renders asynchronously)."""
    dom = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                          "--virtual-time-budget=20000", "--dump-dom", page.as_uri()],
                         capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    return dom.stdout


def test_page_uses_no_cdn(plots_page):
    source, _, _ = plots_page
    assert "cdn.jsdelivr.net" not in source and "<script src=" not in source


def test_every_plot_renders_without_errors(plots_page):
    source, dom, confusions = plots_page
    expected = re.findall(r"vegaEmbed\('#([^']+)'", source)
    views = Views(expected)
    views.feed(dom)
    assert views.errors == [] and views.warnings == []
    assert set(views.views) == set(expected)
    not_drawn = {k: v for k, v in views.views.items() if not v["rendered"] or v["marks"] == 0}
    assert not_drawn == {}
    # the stage's per-cell counts for each scored set, the row-normalised top-level plots,
    # and the DVCLive curves of both training phases
    ids = " ".join(expected)
    for key in confusions:
        assert key in ids
    assert "normalised" in ids
    # Each training curve once: in the top-level charts that pair train and validation, and
    # not again in a chart per DVCLive file.
    assert sorted(i for i in expected if i.startswith(("phase1", "phase2"))) == sorted(
        f"{stage}_{what}" for stage in ("phase1", "phase2") for what in ("loss", "accuracy", "lr"))


def test_a_plot_that_fails_is_caught(plots_page, tmp_path):
    source, _, _ = plots_page
    ids = re.findall(r"vegaEmbed\('#([^']+)'", source)
    broken = tmp_path / "index.html"
    broken.write_text(source.replace("var spec = {", "var spec = {\"data\": {\"url\": \"missing.json\"}, "
                                     "\"mark\": \"rect\"}; var unused = {", 1))
    views = Views(ids)
    views.feed(dump_dom(broken))
    assert "missing.json" in " ".join(views.warnings)
    assert views.views[ids[0]]["marks"] == 0
