"""Write the page template of `dvc plots show` with vega, vega-lite and vega-embed inlined.

DVC's own page loads the three libraries from a CDN, so offline it is blank. .dvc/config
points `plots.html_template` at .dvc/plots/template.html, which this script writes from
tools/plots_page.html and the JavaScript bundle of the `vl-convert-python` package (pinned in
requirements.txt): `make setup` runs it. Vega-Lite is bundled at the major version of the
schema DVC's plot templates are written for (v5), so vega-embed has no mismatch to warn about.

    python tools/plots_template.py [OUT]      # default: .dvc/plots/template.html
"""
from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGE = Path(__file__).with_name("plots_page.html")
DEFAULT_OUT = ROOT / ".dvc" / "plots" / "template.html"
VEGA_LITE = "5.21"        # the newest 5.x that vl-convert bundles; DVC's templates use the v5 schema
MARK = "<!-- VEGA_SCRIPTS -->"


def _stamp() -> str:
    """What the template is made of: the page, the package version and the Vega-Lite version."""
    import vl_convert

    made_of = f"{PAGE.read_text()}\n{vl_convert.__version__}\n{VEGA_LITE}"
    return hashlib.sha256(made_of.encode()).hexdigest()[:16]


def build() -> str:
    import vl_convert

    page = PAGE.read_text()
    if MARK not in page or "{plot_divs}" not in page:
        raise SystemExit(f"{PAGE}: needs {MARK} and DVC's {{plot_divs}}")
    # `</script` inside the bundle would end the script element early.
    bundle = vl_convert.javascript_bundle(vl_version=VEGA_LITE).replace("</script", "<\\/script")
    # DVC substitutes {plot_divs}, {scripts} and {refresh_tag} by plain replacement, anywhere.
    for placeholder in ("{plot_divs}", "{scripts}", "{refresh_tag}"):
        if placeholder in bundle:
            raise SystemExit(f"the vega bundle contains {placeholder}, which DVC would replace")
    return page.replace(MARK, f"<!-- built-from: {_stamp()} -->\n<script>\n{bundle}\n</script>")


def up_to_date(out: Path) -> bool:
    return out.is_file() and f"<!-- built-from: {_stamp()} -->" in out.read_text()


def write(out: Path = DEFAULT_OUT) -> bool:
    """Write the template unless it is current; True if it was written."""
    if up_to_date(out):
        out.touch()   # current: newer than what make compares it with, so make stops asking
        return False
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(build())
    tmp.replace(out)
    return True


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", nargs="?", type=Path, default=DEFAULT_OUT)
    args = p.parse_args(argv)
    print(f"{args.out}: {'written' if write(args.out) else 'up to date'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
