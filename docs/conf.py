"""Sphinx configuration for skdiffusion.

Build with ``make docs`` (warnings are errors). The gallery runs every
``examples/plot_*.py`` and embeds its output and figures (each example is sized
to run in under a minute on two CPU cores). ``SKDIFFUSION_GALLERY_EXECUTE``
changes that: ``0`` renders the code without running it (a quick build of the
text), ``1`` (the default) runs every example, and any other value is a regular
expression that selects the examples to run, e.g.
``SKDIFFUSION_GALLERY_EXECUTE=surrogate``.
"""

import os
import re
import shutil
from pathlib import Path

import numpy as np

import skdiffusion

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent

project = "skdiffusion"
author = "skdiffusion developers"
copyright = "2024, skdiffusion developers"
release = skdiffusion.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]

templates_path = ["_templates"]
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
default_role = "literal"

# -- API reference -----------------------------------------------------------
# api.rst holds the one list of public names; autosummary writes a page for
# each into generated/ (gitignored) on every build.
autosummary_generate = True
autodoc_typehints = "none"
# numpydoc renders the docstrings; autodoc (through the templates) lists the
# methods, so numpydoc must not add a second, duplicate member table.
numpydoc_show_class_members = False
numpydoc_show_inherited_class_members = False
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = True

# Links to numpy/scipy/sklearn/torch need the network; CI builds offline, so
# they are opt-in: SKDIFFUSION_DOCS_INTERSPHINX=1 make docs.
if os.environ.get("SKDIFFUSION_DOCS_INTERSPHINX") == "1":
    extensions.append("sphinx.ext.intersphinx")
    intersphinx_mapping = {
        "python": ("https://docs.python.org/3", None),
        "numpy": ("https://numpy.org/doc/stable", None),
        "scipy": ("https://docs.scipy.org/doc/scipy", None),
        "sklearn": ("https://scikit-learn.org/stable", None),
        "torch": ("https://pytorch.org/docs/stable", None),
        "joblib": ("https://joblib.readthedocs.io/en/stable", None),
    }

# -- Gallery -----------------------------------------------------------------
# sphinx-gallery needs a header file in the examples folder and fails on a
# missing folder. The examples are staged under _build/ with a default header
# (kept when examples/ brings its own), so an empty or absent examples/ still
# builds and examples/ itself holds only the scripts.
GALLERY_SOURCE = DOCS / "_build" / "gallery_source"
HEADER_NAMES = ("GALLERY_HEADER.txt", "GALLERY_HEADER.rst", "README.txt", "README.rst")


def _stage_examples():
    shutil.rmtree(GALLERY_SOURCE, ignore_errors=True)
    examples = ROOT / "examples"
    if examples.is_dir():
        shutil.copytree(
            examples,
            GALLERY_SOURCE,
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "out"),
        )
    GALLERY_SOURCE.mkdir(parents=True, exist_ok=True)
    if not any((GALLERY_SOURCE / name).is_file() for name in HEADER_NAMES):
        shutil.copy(DOCS / "gallery_header.txt", GALLERY_SOURCE / "GALLERY_HEADER.txt")


def _gallery_pattern(setting):
    """Examples to execute: all for "1", none for ""/"0", else a regex."""
    if setting in ("", "0"):
        return None
    if setting == "1":
        return re.escape(os.sep) + "plot_"
    return setting


_stage_examples()
_execute = _gallery_pattern(os.environ.get("SKDIFFUSION_GALLERY_EXECUTE", "1"))
plot_gallery = str(_execute is not None)
sphinx_gallery_conf = {
    "examples_dirs": os.path.relpath(GALLERY_SOURCE, DOCS),
    "gallery_dirs": "auto_examples",
    "filename_pattern": _execute or re.escape(os.sep) + "plot_",
    # Only plot_*.py scripts are gallery pages: helpers such as _common.py and
    # scripts meant for other launchers (train_distributed.py, for torchrun)
    # stay out.
    "ignore_pattern": r"^(?!plot_)",
    "download_all_examples": False,
    "remove_config_comments": True,
    "within_subsection_order": "FileNameSortKey",
    "abort_on_example_error": True,
    "reset_modules": ("matplotlib",),
    # The timing pages would be written into docs/ itself, outside _build.
    "write_computation_times": False,
    # "Examples using X" on each API page, found by reading the scripts.
    "doc_module": ("skdiffusion",),
    "backreferences_dir": "generated/backreferences",
}

# -- HTML --------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"skdiffusion {release}"
html_static_path = []
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
}
html_show_sourcelink = False


def _describe_value(value):
    """Docstring lines for a constant: its type and value."""
    if isinstance(value, dict):
        return ["Mapping with keys " + ", ".join(f"``{key!r}``" for key in value) + "."]
    if isinstance(value, np.ndarray):
        return [f"Array of shape {value.shape}:", "", "::", ""] + [
            "    " + line for line in repr(value).splitlines()
        ]
    return [f"``{value!r}``"]


def _document_constant(app, what, name, obj, options, lines):
    """Show a constant's value instead of its type's docstring.

    A module-level constant has no docstring of its own, and autodoc falls back
    to its type's (numpy.ndarray's, dict's), which is noise and not valid
    numpydoc. A ``#:`` doc comment, when autodoc finds one, is kept.
    """
    type_doc = (getattr(type(obj), "__doc__", None) or "").strip()
    first = next((line.strip() for line in lines if line.strip()), "")
    if what == "data" and first.split("(")[0] == type_doc.split("(")[0]:
        lines[:] = _describe_value(obj)


SKLEARN_REF = re.compile(r":(?:ref|term|doc):`(?:([^`<]*?)\s*<[^`>]+>|([^`]+))`")


def _unlink_sklearn_refs(app, what, name, obj, options, lines):
    """Turn ``:ref:``/``:term:`` roles of inherited sklearn docstrings into text.

    Methods inherited from sklearn (score, set_output, ...) point into
    sklearn's user guide and glossary, which this site does not have.
    """
    if getattr(obj, "__module__", "").startswith("sklearn."):
        lines[:] = [
            SKLEARN_REF.sub(lambda m: m[1] or f"``{m[2]}``", line) for line in lines
        ]


def setup(app):
    # Before numpydoc (priority 500), which would otherwise parse that text.
    app.connect("autodoc-process-docstring", _document_constant, priority=400)
    app.connect("autodoc-process-docstring", _unlink_sklearn_refs, priority=400)
