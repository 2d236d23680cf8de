"""What every estimator of the package does the same way.

- :func:`fit_context`: sklearn's parameter validation, plus the promise that
  a failed ``fit`` or ``partial_fit`` leaves the estimator exactly as it was.
- :func:`row_chunks` and :func:`progress` (from ``_progress``, which the
  torch-only training engine imports too): slices over rows for chunked
  work, and the one progress reporter (a bar where a terminal or a notebook
  shows one, plain lines otherwise, nothing unless ``verbose``).
"""

import functools

from sklearn import get_config
from sklearn.base import _fit_context

from ._progress import progress, row_chunks
from ._validation import reject_bools

__all__ = ["check_unchanged", "fit_context", "progress", "row_chunks"]


def fit_context(*, prefer_skip_nested_validation=True):
    """Decorate ``fit``-like methods: validate parameters, undo on failure.

    The parameters are validated by scikit-learn's ``_parameter_constraints``
    machinery, and booleans given to numeric parameters are refused
    (:func:`skdiffusion._validation.reject_bools`).

    The estimator's ``__dict__`` is snapshotted (shallowly) before the call
    and put back if the call raises, so a failed call leaves every
    attribute, ``n_features_in_`` and ``feature_names_in_`` included, as it
    was. The snapshot is shallow on purpose (no copy of weights or normal
    equations): the rule that makes it enough is that a fit never changes a
    fitted attribute's object in place, it builds new ones and assigns them
    (the training engine copies the weights and optimiser state it starts
    from).

    Parameters
    ----------
    prefer_skip_nested_validation : bool, default=True
        As in :func:`sklearn.base._fit_context`: False for meta-estimators,
        whose inner estimators validate their own parameters.
    """

    def decorate(method):
        @functools.wraps(method)
        def restoring(estimator, *args, **kwargs):
            before = dict(vars(estimator))
            try:
                return method(estimator, *args, **kwargs)
            except BaseException:
                vars(estimator).clear()
                vars(estimator).update(before)
                raise

        validated = _fit_context(
            prefer_skip_nested_validation=prefer_skip_nested_validation
        )(restoring)

        @functools.wraps(method)
        def checked(estimator, *args, **kwargs):
            if not get_config()["skip_parameter_validation"]:
                reject_bools(
                    estimator._parameter_constraints,
                    estimator.get_params(deep=False),
                    type(estimator).__name__,
                )
            return validated(estimator, *args, **kwargs)

        return checked

    return decorate


def check_unchanged(estimator, fitted_params, use):
    """Raise if a parameter that shaped the fitted model was changed since fit.

    `fitted_params` maps parameter names to their values at fit; `use` names
    what needs them (e.g. ``"transform"``), for the message.
    """
    changed = [
        f"{name}={getattr(estimator, name)!r} (fitted with {value!r})"
        for name, value in fitted_params.items()
        if getattr(estimator, name) != value
    ]
    if changed:
        refit = "refit (warm_start=False)" if hasattr(estimator, "warm_start") else (
            "refit"
        )
        raise ValueError(
            f"{type(estimator).__name__}.{use} needs the fitted model, but "
            f"{', '.join(changed)} changed after fit; set them back, or {refit} "
            "to fit a model with them."
        )
