import os

# Tests run on 2 cores; keep every library to the cores we have. Passive OpenMP
# waiting keeps torch's tiny-network steps from spinning against each other
# when the cores are shared (measured 10x slower with the default policy).
# Both must be set before torch is first imported.
os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


import collections  # noqa: E402
import contextlib  # noqa: E402

import pytest  # noqa: E402  (after the environment is set)

# Cases run per public entry point by the property-based tests
# (test_properties.py), printed at the end of the session.
_PROPERTY_CASES = collections.Counter()


@pytest.fixture(scope="module")
def one_torch_thread():
    """torch on one thread for a module: tiny networks on shared cores run
    faster on one thread than on two."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def property_cases():
    """A counter of property-based cases per entry point, reported at the end."""
    return _PROPERTY_CASES


def pytest_terminal_summary(terminalreporter):
    if not _PROPERTY_CASES:
        return
    with contextlib.suppress(Exception):
        total = sum(_PROPERTY_CASES.values())
        terminalreporter.section(
            f"property-based cases per entry point ({total} in all)"
        )
        for name, count in sorted(_PROPERTY_CASES.items()):
            terminalreporter.write_line(f"{count:5d}  {name}")


@pytest.fixture
def interrupt_adam_after(monkeypatch):
    """``interrupt_adam_after(n)``: Adam applies n steps, then Ctrl-C arrives."""
    import torch

    def interrupt(n_steps):
        adam_step, calls = torch.optim.Adam.step, []

        def interrupted_step(optimizer, *args, **kwargs):
            calls.append(1)
            if len(calls) > n_steps:
                raise KeyboardInterrupt
            return adam_step(optimizer, *args, **kwargs)

        monkeypatch.setattr(torch.optim.Adam, "step", interrupted_step)

    return interrupt


@pytest.fixture
def unit_probe(monkeypatch):
    """The plans' probes replaced: a microsecond for every row, step and cycle,
    and a process of 0.5 GB.

    Returns the timing, for plans called directly.
    """
    from skdiffusion.experiments import _plan, _plan_others

    networks = dict.fromkeys(
        ["dense(1x256)", "dense(2x256)", "dense(3x256)", "residual(3 blocks)"], 1e-6
    )
    timing = _plan._Probe(1e-6, 1e-6, networks, *[1e-6] * 5, process_gb=0.5)
    monkeypatch.setattr(_plan, "probe", lambda preset: timing)
    methods = ["diffusion EnOI", "static diagonal EnOI", "static full EnOI",
               "3D-Var", "ETKF (3)", "ETKF (12)"]
    monkeypatch.setattr(
        _plan_others, "probe_cycles", lambda preset: dict.fromkeys(methods, 1e-6)
    )
    return timing
