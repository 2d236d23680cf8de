import os

# Tests run on 2 cores; keep every library to the cores we have. Passive OpenMP
# waiting keeps torch's tiny-network steps from spinning against each other
# when the cores are shared (measured 10x slower with the default policy).
# Both must be set before torch is first imported.
os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


import pytest  # noqa: E402  (after the environment is set)


@pytest.fixture(scope="module")
def one_torch_thread():
    """torch on one thread for a module: tiny networks on shared cores run
    faster on one thread than on two."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
