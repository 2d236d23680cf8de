"""The getting-started example in the docs runs and does what its text says."""

import textwrap
from pathlib import Path

import numpy as np

DOCS = Path(__file__).resolve().parents[1] / "docs"


def python_blocks(text):
    """The bodies of the ``.. code-block:: python`` directives of ``text``."""
    blocks = []
    for chunk in text.split(".. code-block:: python")[1:]:
        lines = []
        for line in chunk.splitlines()[1:]:
            if line.strip() and not line.startswith(" "):
                break
            lines.append(line)
        blocks.append(textwrap.dedent("\n".join(lines)).strip())
    return blocks


def test_python_blocks_reads_indented_code():
    text = "Intro\n\n.. code-block:: python\n\n   a = 1\n\n   b = a\n\nAfter.\n"
    assert python_blocks(text) == ["a = 1\n\nb = a"]


def test_getting_started_example_runs(capsys):
    text = (DOCS / "getting_started.rst").read_text(encoding="utf-8")
    (code,) = [block for block in python_blocks(text) if "forecast" in block]
    # The documented defaults train for minutes; a tiny network shows the API.
    tiny = "DiffusionFeaturizer(n_hidden=8, max_iter=5, random_state=0)"
    assert "DiffusionFeaturizer(random_state=0)" in code
    namespace = {}
    exec(code.replace("DiffusionFeaturizer(random_state=0)", tiny), namespace)

    assert namespace["forecast"].shape == (90, 51, 3)
    scores = namespace["nrmse"](namespace["truth"], namespace["forecast"], std=1.0)
    assert scores.shape == (51,)
    assert scores[0] == 0.0 and np.all(np.isfinite(scores))
    assert capsys.readouterr().out.strip().startswith("[0.")


def markdown_python_blocks(text):
    """The bodies of the ```python fences of a Markdown text."""
    return [chunk.split("```")[0].strip() for chunk in text.split("```python\n")[1:]]


def test_readme_example_runs(capsys):
    text = (DOCS.parent / "README.md").read_text(encoding="utf-8")
    (code,) = markdown_python_blocks(text)
    # the README trains for 300 steps; a tiny network shows the API
    real = "DiffusionFeaturizer(max_iter=300, random_state=0)"
    assert real in code
    namespace = {}
    exec(code.replace(real, "DiffusionFeaturizer(n_hidden=8, max_iter=5, "
                      "random_state=0)"), namespace)

    assert namespace["rollout"].shape == (8, 11, 3)  # as its comment says
    assert np.all(np.isfinite(namespace["rollout"]))
    printed = capsys.readouterr().out.strip()
    assert 0 < float(printed) < 1  # the one-step nRMSE, a scalar
