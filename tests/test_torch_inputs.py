"""What the torch estimators refuse: values far outside the training data,
data whose statistics overflow, and devices they cannot run on."""

import numpy as np
import pytest

from skdiffusion import (
    ConvRegressor,
    DenseRegressor,
    DiffusionFeaturizer,
    ResidualRegressor,
)
from skdiffusion.datasets import make_lorenz63

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture(scope="module")
def data():
    return make_lorenz63(1, 300, burn_in=500, random_state=0)


@pytest.fixture(scope="module")
def featurizer(data):
    return DiffusionFeaturizer(n_hidden=8, n_blocks=1, max_iter=3).fit(data.X)


def far(value):
    return np.array([[value, 0.0, 0.0]])


@pytest.mark.parametrize("value", [1e20, -1e30, 1e7])
def test_featurizer_refuses_states_far_from_the_training_data(featurizer, value):
    for use in (
        lambda: featurizer.transform(far(value)),
        lambda: featurizer.sample_ensemble(far(value), 130, 2),
        lambda: featurizer.score(far(value)),
    ):
        with pytest.raises(ValueError, match="X has a value .* standard deviations"):
            use()


def test_values_within_the_bound_are_finite(featurizer):
    assert np.isfinite(featurizer.transform(far(1e5))).all()


@pytest.mark.parametrize("cls", [DenseRegressor, ResidualRegressor])
def test_regressors_refuse_inputs_far_from_the_training_data(cls, data):
    reg = cls(8, max_iter=3).fit(data.X, data.y)
    with pytest.raises(ValueError, match="standard deviations"):
        reg.predict(far(1e20))


def test_overflowing_statistics_are_refused(data):
    with pytest.raises(ValueError, match="X "):
        DiffusionFeaturizer(max_iter=1).fit(data.X * 1e160)


@pytest.mark.parametrize("device", ["meta", "mps", "xla"])
@pytest.mark.parametrize("cls", [DiffusionFeaturizer, ConvRegressor])
def test_unsupported_devices_are_named(cls, device, data):
    estimator = cls(max_iter=1, device=device)
    with pytest.raises(ValueError, match=f"device='{device}'"):
        estimator.fit(data.X, data.y)
