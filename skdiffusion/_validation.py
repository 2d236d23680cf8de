"""The package's one policy for bad input, used by every public entry point.

- Arrays must be numeric: strings are refused with a message naming the
  array (scikit-learn would convert ``"1.5"`` to 1.5 silently when a float
  dtype is asked for, which hides a column read as text).
- Arrays must be finite (scikit-learn's check, with the array's name), and
  results that would come out non-finite raise instead (:func:`check_finite`).
- Integer and real parameters refuse ``True``/``False``: scikit-learn's
  ``Interval(Integral, ...)`` accepts bools, since ``bool`` is a subclass of
  ``int``, so ``max_iter=True`` would train one step. The rule is applied to
  every parameter whose constraints admit numbers but not booleans, by
  :func:`reject_bools`, which :func:`skdiffusion._base.fit_context` and
  :func:`validate_params` call.
- Sizes whose result cannot fit in this machine's memory raise a ValueError
  saying how much they would need (:func:`check_memory`), not an allocator's
  error deep inside.

Use :func:`validate_data`, :func:`check_array` and :func:`validate_params`
in place of scikit-learn's functions of the same names.
"""

import contextlib
import functools
import inspect
import os
import re
from numbers import Integral, Real

import numpy as np
from sklearn import get_config
from sklearn.utils._param_validation import (
    Interval,
    InvalidParameterError,
    Options,
    make_constraint,
)
from sklearn.utils._param_validation import validate_params as _validate_params
from sklearn.utils.validation import check_array as _check_array
from sklearn.utils.validation import validate_data as _validate_data

from ._out_of_core import spooled

__all__ = [
    "check_array",
    "check_finite",
    "check_memory",
    "check_numeric",
    "reject_bools",
    "validate_data",
    "validate_params",
]


def check_numeric(array, name="X"):
    """Raise a ValueError naming `name` if `array` holds strings.

    Numbers of any dtype pass, as do object arrays of numbers (scikit-learn's
    estimator checks require those to work) and DataFrames whose columns are
    numbers. Ragged or otherwise odd input passes too: the array checks that
    follow say what is wrong with it.
    """
    if isinstance(array, str | bytes):
        raise ValueError(
            f"{name} must be an array of numbers, got the string {array!r}."
        )
    dtypes = getattr(array, "dtypes", None)
    if dtypes is not None and not isinstance(dtypes, np.dtype):  # a DataFrame
        for position, dtype in enumerate(dtypes):
            if getattr(dtype, "kind", "O") not in "OUS":
                continue  # numbers: no need to look at the values
            column = array.columns[position]
            if _holds_text(array.iloc[:, position].to_numpy(), dtype):
                raise ValueError(
                    f"{name} must hold numbers, but its column {column!r} holds "
                    f"text (dtype {dtype}); convert it with pandas.to_numeric "
                    "first if it holds numbers written as text."
                )
        return
    if hasattr(array, "dtype") and not isinstance(array, np.ndarray):
        dtype = array.dtype  # a torch tensor, a sparse matrix: numbers
        if not isinstance(dtype, np.dtype) or dtype.kind not in "OUS":
            return
    try:
        values = np.asarray(array)
    except (ValueError, TypeError):
        return
    if _holds_text(values, values.dtype):
        raise ValueError(
            f"{name} must be an array of numbers, got an array holding text "
            f"(dtype {values.dtype}); convert it with np.asarray({name}, "
            "dtype=float) first if it holds numbers written as text."
        )


def _holds_text(values, dtype):
    kind = getattr(dtype, "kind", "O")
    if kind in "US":
        return True
    if kind != "O":
        return False
    return any(isinstance(value, str | bytes) for value in np.ravel(values))


def validate_data(estimator, X="no_validation", y="no_validation", **kwargs):
    """:func:`sklearn.utils.validation.validate_data`, refusing text first.

    Its messages name the array they are about ("X: Expected 2D array...").
    A Dask array is stored into a temporary memmap first, block by block
    (:func:`~skdiffusion._out_of_core.spooled`), never computed whole.
    """
    X, y = spooled(X), spooled(y)
    names = []
    for name, array in (("X", X), ("y", y)):
        if not (isinstance(array, str) and array == "no_validation") and (
            array is not None
        ):
            check_numeric(array, name)
            names.append(name)
    # Messages that name no array are about X (its shape, its dtype), but
    # for the lengths of X and y.
    with _naming(names[0] if names else "X", both=" and ".join(names)):
        return _validate_data(estimator, X, y, **kwargs)


def check_array(array, *args, input_name="X", **kwargs):
    """:func:`sklearn.utils.validation.check_array`, refusing text first.

    The default ``input_name`` is "X", and every message names the array.
    A Dask array is spooled to a memmap first, as in :func:`validate_data`.
    """
    array = spooled(array)
    check_numeric(array, input_name)
    with _naming(input_name):
        return _check_array(array, *args, input_name=input_name, **kwargs)


@contextlib.contextmanager
def _naming(name, both=""):
    """Prefix `name` to scikit-learn's messages that do not name the array.

    ("Expected 2D array, got 1D array instead" does not say which.) `both`
    names the arrays of a length mismatch. The exception keeps its type, so
    code that catches it still does.
    """
    try:
        yield
    except (ValueError, TypeError) as error:
        message = str(error)
        if any(re.search(rf"\b{part}\b", message) for part in ("X", "y", name)):
            raise
        if both and "inconsistent numbers of samples" in message:
            name = both
        try:
            renamed = type(error)(f"{name}: {message}")
        except TypeError:  # an exception class that wants other arguments
            raise error from None
        raise renamed from error


def check_finite(values, name, why=""):
    """Return `values` if all finite, else raise a ValueError naming `name`.

    For results: a public function raises rather than return NaN or inf.
    `why` is appended to the message (the likely cause, the remedy).
    """
    values_array = np.asarray(values)
    finite = np.isfinite(values_array)
    if not finite.all():
        n_bad = int(finite.size - np.count_nonzero(finite))
        raise ValueError(
            f"{name} came out non-finite ({n_bad} of {finite.size} values NaN or "
            f"inf){'; ' + why if why else '.'}"
        )
    return values


def _physical_memory():
    """Bytes of memory of this machine (None where the OS does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def _bytes_text(n_bytes):
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6)):
        if n_bytes >= size:
            return f"{n_bytes / size:.3g} {unit}"
    return f"{n_bytes:.0f} bytes"


def check_memory(n_bytes, what):
    """Raise a ValueError if `n_bytes` exceed this machine's memory.

    `what` says which argument asked for it, e.g.
    ``"n_samples=10000000000000 states of 3 float32 values"``.
    """
    available = _physical_memory()
    if available is not None and n_bytes > available:
        raise ValueError(
            f"{what} would need {_bytes_text(n_bytes)} of memory, more than the "
            f"{_bytes_text(available)} of this machine; ask for fewer at a time."
        )


def _admits_bool_on_purpose(constraint, value):
    """Whether `constraint` is one that means to accept booleans."""
    name = type(constraint).__name__
    if name in ("_Booleans", "_VerboseHelper", "_RandomStates", "_NoneConstraint"):
        return name != "_NoneConstraint"
    if isinstance(constraint, Options):
        return any(option is value for option in constraint.options)
    bool_type = getattr(constraint, "type", None)
    return bool_type in (bool, np.bool_)


def _is_numeric(constraint):
    if isinstance(constraint, Interval):
        return True
    kind = getattr(constraint, "type", None)
    return type(constraint).__name__ == "_InstancesOf" and kind in (
        Integral, Real, int, float
    )


def reject_bools(parameter_constraints, params, caller):
    """Raise InvalidParameterError for a bool given to a numeric parameter.

    A parameter is numeric when one of its constraints is an ``Interval`` or
    a number type, and none is meant for booleans ("boolean", "verbose",
    ``bool``, "random_state").
    """
    for name, value in params.items():
        if not isinstance(value, bool | np.bool_):
            continue
        constraints = parameter_constraints.get(name, "no_validation")
        if isinstance(constraints, str):
            continue
        constraints = [make_constraint(constraint) for constraint in constraints]
        if any(_admits_bool_on_purpose(c, value) for c in constraints) or not any(
            _is_numeric(c) for c in constraints
        ):
            continue
        allowed = " or ".join(str(c) for c in constraints if not c.hidden)
        raise InvalidParameterError(
            f"The {name!r} parameter of {caller} must be {allowed}, not a "
            f"bool. Got {value!r} instead."
        )


def validate_params(parameter_constraints, *, prefer_skip_nested_validation):
    """:func:`sklearn.utils._param_validation.validate_params`, refusing bools.

    Booleans given to numeric parameters are refused as in
    :func:`reject_bools`; everything else is scikit-learn's decorator.
    """
    sklearn_decorator = _validate_params(
        parameter_constraints,
        prefer_skip_nested_validation=prefer_skip_nested_validation,
    )

    def decorator(func):
        validated = sklearn_decorator(func)
        signature = inspect.signature(func)

        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            if not get_config()["skip_parameter_validation"]:
                try:
                    bound = signature.bind_partial(*args, **kwargs)
                except TypeError:
                    return validated(*args, **kwargs)  # Python says what is wrong
                reject_bools(parameter_constraints, bound.arguments, func.__qualname__)
            return validated(*args, **kwargs)

        return wrapper

    return decorator
