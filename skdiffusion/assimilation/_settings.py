"""The one way an assimilation method or ensemble sampler checks its settings."""


def check_settings(settings):
    """Validate the parameters of a method or sampler, naming a bad one.

    Methods and samplers have no ``fit``: they are settings objects
    (:class:`~sklearn.base.BaseEstimator` for ``get_params`` /
    ``set_params``) whose ``_parameter_constraints`` say what each parameter
    may be. Each public entry point (``assimilate``, ``sample_ensemble``,
    :func:`run_twin_experiment`) calls this first. An object without
    constraints (any duck-typed method) is taken as it is.
    """
    if hasattr(settings, "_parameter_constraints"):
        settings._validate_params()
