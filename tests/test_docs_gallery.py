"""The built documentation's gallery shows figures.

The docs build (``make docs``) runs every ``examples/plot_*.py``; each page of
``docs/_build/html/auto_examples`` then embeds the figures its script drew.
This counts the figures those pages show and whose image files the build wrote.
Without a built gallery, or with one built without running the examples
(``SKDIFFUSION_GALLERY_EXECUTE=0``), the test skips, unless
``SKDIFFUSION_REQUIRE_DOCS=1`` (CI sets it after ``make docs``): then it fails.
"""

import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GALLERY_HTML = ROOT / "docs" / "_build" / "html" / "auto_examples"
MIN_FIGURES = 5
# sphinx-gallery names a script's figures sphx_glr_<script>_001.png, _002.png,
# ...; thumbnails end in _thumb.png and are not figures.
FIGURE = re.compile(r'<img[^>]+src="([^"]*sphx_glr_[^"]*_\d{3}\.png)"')
# sphinx-gallery writes this line on the page of every example it ran.
RAN = "Total running time of the script"


def gallery_figures(gallery_html):
    """Per example page, the figure images it shows that exist on disk."""
    figures = {}
    for page in sorted(Path(gallery_html).glob("plot_*.html")):
        sources = FIGURE.findall(page.read_text(encoding="utf-8"))
        found = {src for src in sources if (page.parent / src).is_file()}
        figures[page.stem] = sorted(found)
    return figures


def test_gallery_figures_counts_only_existing_figures(tmp_path):
    images = tmp_path / "_images"
    images.mkdir()
    (images / "sphx_glr_plot_a_001.png").write_bytes(b"png")
    pages = tmp_path / "auto_examples"
    pages.mkdir()
    (pages / "plot_a.html").write_text(
        '<img src="../_images/sphx_glr_plot_a_001.png" alt="fig">'
        '<img src="../_images/sphx_glr_plot_a_002.png" alt="missing file">'
        '<img src="../_images/sphx_glr_plot_a_thumb.png" alt="thumbnail">'
    )
    (pages / "plot_b.html").write_text("<p>code only, not run</p>")
    assert not gallery_ran(pages)
    (pages / "plot_c.html").write_text(f"<p>{RAN}: 1.2 s</p>")
    assert gallery_ran(pages)
    assert gallery_figures(pages) == {
        "plot_a": ["../_images/sphx_glr_plot_a_001.png"],
        "plot_b": [],
        "plot_c": [],
    }


def gallery_ran(gallery_html):
    """Whether the build that wrote ``gallery_html`` ran any example."""
    pages = Path(gallery_html).glob("plot_*.html")
    return any(RAN in page.read_text(encoding="utf-8") for page in pages)


def test_built_gallery_shows_enough_figures():
    if not (GALLERY_HTML.is_dir() and gallery_ran(GALLERY_HTML)):
        message = (
            f"no gallery built with its examples run at {GALLERY_HTML}; "
            "run `make docs` first"
        )
        if os.environ.get("SKDIFFUSION_REQUIRE_DOCS") == "1":
            pytest.fail(message)
        pytest.skip(message)
    figures = gallery_figures(GALLERY_HTML)
    n_figures = sum(map(len, figures.values()))
    without = sorted(page for page, found in figures.items() if not found)
    assert n_figures >= MIN_FIGURES, (
        f"the built gallery shows {n_figures} figures (pages without one: "
        f"{without}); expected at least {MIN_FIGURES}"
    )
