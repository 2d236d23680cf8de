import os

# Tests run on 2 cores; keep every library to the cores we have.
os.environ.setdefault("OMP_NUM_THREADS", "2")
