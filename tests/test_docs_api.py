"""The API reference (docs/api.rst) lists every public name, and only those.

Each public module's ``__all__`` and ``skdiffusion.__all__`` must appear in an
``autosummary`` list of ``docs/api.rst``, so the reference cannot silently fall
behind the code. Modules that are not on disk yet are skipped; modules that are
on disk must import.
"""

import importlib
import inspect
import re
from pathlib import Path

import pytest

import skdiffusion

ROOT = Path(__file__).resolve().parents[1]
API_RST = ROOT / "docs" / "api.rst"
PACKAGE = ROOT / "skdiffusion"
# Modules of plain functions, documented name by name: they must say what is public.
FUNCTION_MODULES = {"assimilation", "datasets", "diffusion", "experiments", "metrics"}


def documented_names(text):
    """Fully qualified names listed in the ``autosummary`` blocks of ``text``."""
    names, module, in_list = set(), None, False
    for line in text.splitlines():
        directive = re.match(r"\.\. (currentmodule|autosummary)::\s*(\S*)", line)
        if directive:
            if directive[1] == "currentmodule":
                module = directive[2]
            in_list = directive[1] == "autosummary"
        elif in_list and line and not line.startswith(" "):
            in_list = False
        elif in_list and line.strip() and not line.strip().startswith(":"):
            names.add(f"{module}.{line.strip()}")
    return names


def on_disk(module):
    return (PACKAGE / f"{module}.py").is_file() or (
        PACKAGE / module / "__init__.py"
    ).is_file()


def written(module, name):
    """Whether ``module.name`` exists; False while its code is being written.

    Lazily exported names whose private submodule is not on disk yet raise
    ModuleNotFoundError; any other import error is a real failure.
    """
    try:
        getattr(module, name)
    except AttributeError:
        return False
    except ModuleNotFoundError as error:
        if not (error.name or "").startswith("skdiffusion."):
            raise
        return False
    return True


DOCUMENTED = documented_names(API_RST.read_text(encoding="utf-8"))
PUBLIC_MODULES = sorted(skdiffusion._SUBMODULES)


def test_documented_names_parses_autosummary_lists():
    text = """
.. currentmodule:: pkg

.. autosummary::
   :toctree: generated
   :template: function.rst

   first
   second

Prose mentioning ``third`` is not a list entry.

.. currentmodule:: pkg.sub

.. autosummary::

   fourth
"""
    assert documented_names(text) == {"pkg.first", "pkg.second", "pkg.sub.fourth"}


def test_top_level_estimators_are_documented():
    exported = [
        name
        for name in skdiffusion.__all__
        if on_disk(skdiffusion._EXPORTS[name]) and written(skdiffusion, name)
    ]
    missing = [name for name in exported if f"skdiffusion.{name}" not in DOCUMENTED]
    assert not missing, f"add {missing} to the Estimators list of docs/api.rst"


@pytest.mark.parametrize("module_name", PUBLIC_MODULES)
def test_public_module_names_are_documented(module_name):
    if not on_disk(module_name):
        pytest.skip(f"skdiffusion.{module_name} is not written yet")
    module = importlib.import_module(f"skdiffusion.{module_name}")
    if not hasattr(module, "__all__"):
        assert module_name not in FUNCTION_MODULES, (
            f"skdiffusion.{module_name} defines no __all__: list its public "
            "names there so that docs/api.rst can be checked against them"
        )
        return
    missing = [
        name
        for name in module.__all__
        if written(module, name)
        and f"skdiffusion.{module_name}.{name}" not in DOCUMENTED
        and not (name in skdiffusion.__all__ and f"skdiffusion.{name}" in DOCUMENTED)
    ]
    assert not missing, (
        f"add {missing} to the skdiffusion.{module_name} list of docs/api.rst"
    )


@pytest.mark.parametrize("qualified_name", sorted(DOCUMENTED))
def test_documented_names_exist(qualified_name):
    module_name, name = qualified_name.rsplit(".", 1)
    module = importlib.import_module(module_name)
    assert hasattr(module, name), f"docs/api.rst lists {qualified_name}, which is gone"
    # A lazily exported function whose submodule has the same name is replaced
    # by that submodule once imported: the second lookup must still find it.
    assert not inspect.ismodule(getattr(module, name)), (
        f"{qualified_name} is shadowed by a submodule of the same name"
    )
