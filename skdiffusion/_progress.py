"""Progress reporting and row chunking: plain Python, no torch or sklearn.

The training engine (torch only) and the estimators share them.
"""

import sys
import time

__all__ = ["progress", "row_chunks"]


def row_chunks(n_rows, size):
    """Slices of at most `size` consecutive rows covering ``0..n_rows``."""
    for start in range(0, n_rows, size):
        yield slice(start, min(start + size, n_rows))


def _interactive():
    """Whether a progress bar can redraw itself: a terminal or a notebook."""
    if getattr(sys.stderr, "isatty", lambda: False)():
        return True
    return "ipykernel" in sys.modules


class _Lines:
    """Progress as plain lines (logs, CI): at most one line per `every` units."""

    def __init__(self, total, desc, unit, every):
        self.total, self.desc, self.unit, self.every = total, desc, unit, every
        self.n, self.last_printed, self.start = 0, 0, time.perf_counter()
        self.postfix = ""

    def update(self, n=1):
        self.n += n
        if self.n - self.last_printed >= self.every or self.n == self.total:
            self._print()

    def set_postfix_str(self, text, refresh=True):
        self.postfix = text

    def _print(self):
        self.last_printed = self.n
        elapsed = time.perf_counter() - self.start
        line = f"{self.desc}: {self.n}"
        if self.total:
            left = elapsed * (self.total - self.n) / max(self.n, 1)
            line += f"/{self.total} {self.unit}, {elapsed:.0f} s, {left:.0f} s left"
        else:
            line += f" {self.unit}, {elapsed:.0f} s"
        if self.postfix:
            line += f", {self.postfix}"
        print(line, file=sys.stderr, flush=True)

    def close(self):
        if self.n != self.last_printed:
            self._print()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class _Silent:
    def update(self, n=1):
        pass

    def set_postfix_str(self, text, refresh=True):
        pass

    def close(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass


def progress(total, *, desc, verbose, unit="it", every=None):
    """The progress reporter of a long call: use as a context manager.

    Parameters
    ----------
    total : int or None
        Units of work expected (None if unknown).
    desc : str
        What is running, e.g. ``"DiffusionFeaturizer.fit"``.
    verbose : int or bool
        Nothing is shown unless positive.
    unit : str, default="it"
        Name of one unit (``"step"``, ``"row"``).
    every : int, default=None
        Units between plain lines when no bar can be drawn; None prints
        about ten lines in all.

    Returns
    -------
    reporter
        Has ``update(n)``, ``set_postfix_str(text)`` and ``close()``: a
        ``tqdm`` bar (elapsed time and time left) in a terminal or a
        notebook, plain lines on standard error otherwise, or a silent
        stand-in.
    """
    if not verbose:
        return _Silent()
    if _interactive():
        from tqdm.auto import tqdm

        return tqdm(total=total, desc=desc, unit=unit, leave=True)
    if every is None:
        every = max(1, (total or 10) // 10)
    return _Lines(total, desc, unit, every)
