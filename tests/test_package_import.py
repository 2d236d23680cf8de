"""Importing the package: OpenMP threads wait passively unless told otherwise."""

import os
import subprocess
import sys

import pytest


def run(code, **env):
    base = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    out = subprocess.run(
        [sys.executable, "-W", "always", "-c", code],
        env={**base, **env}, capture_output=True, text=True, check=True,
    )
    return out.stdout.strip(), out.stderr


PRINT_POLICY = "import os; print(os.environ.get('OMP_WAIT_POLICY'))"


def test_importing_skdiffusion_first_sets_passive_waiting():
    out, err = run(f"import skdiffusion; {PRINT_POLICY}")
    assert out == "PASSIVE" and "OMP" not in err


def test_a_policy_the_user_chose_is_kept():
    out, err = run(f"import torch, skdiffusion; {PRINT_POLICY}",
                   OMP_WAIT_POLICY="ACTIVE")
    assert out == "ACTIVE" and "spin" not in err


@pytest.mark.filterwarnings("ignore")
def test_torch_imported_first_warns_with_the_remedy():
    out, err = run(f"import torch; import skdiffusion; {PRINT_POLICY}")
    assert out == "None"
    assert "OMP_WAIT_POLICY=PASSIVE" in err and "before torch" in err
