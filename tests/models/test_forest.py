"""CompiledForest must score exactly as the sklearn IsolationForest it was compiled from."""

import numpy as np
import pytest
from sklearn.ensemble import IsolationForest

from amlwatch.models.forest import CompiledForest

N_SCORE = 12_000
CONFIGS = {
    "default": dict(seed=0, n_estimators=100, max_samples="auto", max_features=1.0, contamination="auto"),
    "small-subset": dict(seed=1, n_estimators=50, max_samples=128, max_features=0.5, contamination=0.05),
    "large": dict(seed=2, n_estimators=200, max_samples=1000, max_features=1.0, contamination=0.05),
    "bootstrap-subset": dict(seed=3, n_estimators=100, max_samples=256, max_features=0.5,
                             contamination="auto", bootstrap=True),
    "fractional": dict(seed=4, n_estimators=50, max_samples=0.2, max_features=0.75, contamination=0.05),
}


def make_data(seed: int, n: int, n_features: int = 12) -> np.ndarray:
    """Continuous, integer-valued, heavily tied and constant columns, plus duplicated rows."""
    rng = np.random.default_rng(seed)
    columns = [
        rng.normal(size=n),
        rng.lognormal(3, 2, size=n),
        rng.poisson(3, size=n),
        rng.integers(0, 2, size=n),
        rng.choice([0.1, 0.2, 0.3], size=n),
        np.full(n, 7.0),
        np.round(rng.normal(100, 30, size=n), 2),
    ]
    while len(columns) < n_features:
        columns.append(rng.standard_t(3, size=n) * 1e3)
    X = np.column_stack(columns)
    duplicated = rng.random(n) < 0.2
    X[duplicated] = X[rng.integers(0, n, size=duplicated.sum())]
    return X


@pytest.fixture(scope="module", params=sorted(CONFIGS))
def fitted(request):
    params = dict(CONFIGS[request.param])
    seed = params.pop("seed")
    model = IsolationForest(random_state=seed, **params).fit(make_data(seed, 5_000))
    return model, CompiledForest.from_sklearn(model), make_data(seed + 100, N_SCORE)


def test_score_samples_matches_sklearn(fitted):
    model, compiled, X = fitted
    np.testing.assert_allclose(compiled.score_samples(X), model.score_samples(X), rtol=0, atol=1e-9)


def test_decision_function_matches_sklearn(fitted):
    model, compiled, X = fitted
    assert compiled.offset_ == model.offset_
    np.testing.assert_allclose(compiled.decision_function(X), model.decision_function(X), rtol=0, atol=1e-9)


def test_integer_input_matches_sklearn(fitted):
    model, compiled, X = fitted
    X_int = np.rint(X).astype(np.int64)
    np.testing.assert_allclose(compiled.score_samples(X_int), model.score_samples(X_int), rtol=0, atol=1e-9)


def test_values_on_and_around_thresholds_match_sklearn(fitted):
    """Values equal to, and one float32/float64 step either side of, every threshold.

    sklearn rounds X to float32 and compares with float64 thresholds; comparing
    the unrounded float64 values would send some of these rows the other way.
    """
    model, compiled, X = fitted
    arrays = compiled.to_arrays()
    inner = np.flatnonzero(arrays["left"] >= 0)[:4000]
    feature, threshold = arrays["feature"][inner], arrays["threshold"][inner]
    rounded = threshold.astype(np.float32)
    candidates = [threshold, rounded.astype(np.float64),
                  np.nextafter(rounded, np.float32(np.inf)).astype(np.float64),
                  np.nextafter(rounded, np.float32(-np.inf)).astype(np.float64),
                  np.nextafter(threshold, np.inf), np.nextafter(threshold, -np.inf)]
    rows = np.repeat(X[: len(inner)], len(candidates), axis=0)
    values = np.column_stack(candidates).ravel()
    rows[np.arange(len(rows)), np.repeat(feature, len(candidates))] = values
    tested_threshold = np.repeat(threshold, len(candidates))
    flips = (values <= tested_threshold) != (values.astype(np.float32) <= tested_threshold)
    assert flips.any(), "no candidate exercises the float32 rounding"
    np.testing.assert_allclose(compiled.score_samples(rows), model.score_samples(rows), rtol=0, atol=1e-9)
    one = np.array([compiled.score_one(row) for row in rows[flips][:500]])
    np.testing.assert_allclose(one, model.score_samples(rows[flips][:500]), rtol=0, atol=1e-9)


def test_score_one_equals_batch_row(fitted):
    _, compiled, X = fitted
    batch = compiled.score_samples(X[:1500])
    one = np.array([compiled.score_one(row) for row in X[:1500]])
    np.testing.assert_allclose(one, batch, rtol=0, atol=1e-12)
    assert isinstance(compiled.score_one(X[0]), float)


def test_missing_values_follow_sklearn(fitted):
    model, compiled, X = fitted
    X = X[:3000].copy()
    X[np.random.default_rng(5).random(X.shape) < 0.15] = np.nan
    expected = model.score_samples(X)
    np.testing.assert_allclose(compiled.score_samples(X), expected, rtol=0, atol=1e-9)
    one = np.array([compiled.score_one(row) for row in X[:300]])
    np.testing.assert_allclose(one, expected[:300], rtol=0, atol=1e-9)


def test_forest_fitted_on_missing_values():
    X = make_data(11, 4_000)
    X[np.random.default_rng(11).random(X.shape) < 0.1] = np.nan
    model = IsolationForest(n_estimators=60, random_state=11).fit(X)
    compiled = CompiledForest.from_sklearn(model)
    X_test = make_data(12, N_SCORE)
    X_test[np.random.default_rng(12).random(X_test.shape) < 0.1] = np.nan
    np.testing.assert_allclose(compiled.score_samples(X_test), model.score_samples(X_test), rtol=0, atol=1e-9)


@pytest.mark.parametrize("max_samples", [1, 2, 3])
def test_tiny_trees_match_sklearn(max_samples):
    X = make_data(21, 500)
    model = IsolationForest(n_estimators=20, max_samples=max_samples, random_state=21).fit(X)
    compiled = CompiledForest.from_sklearn(model)
    np.testing.assert_allclose(compiled.score_samples(X), model.score_samples(X), rtol=0, atol=1e-9)
    assert compiled.score_one(X[0]) == pytest.approx(model.score_samples(X[:1])[0], abs=1e-9)


def test_save_load_round_trip(fitted, tmp_path):
    _, compiled, X = fitted
    path = tmp_path / "forest.npz"
    compiled.save(path)
    with np.load(path, allow_pickle=False) as npz:
        assert set(npz.files) == set(compiled.to_arrays())
    loaded = CompiledForest.load(path)
    for name, array in compiled.to_arrays().items():
        assert loaded.to_arrays()[name].dtype == array.dtype
        np.testing.assert_array_equal(loaded.to_arrays()[name], array)
    np.testing.assert_array_equal(loaded.score_samples(X), compiled.score_samples(X))
    assert loaded.score_one(X[3]) == compiled.score_one(X[3])
    assert (loaded.offset_, loaded.max_samples_, loaded.n_features_in_) == (
        compiled.offset_, compiled.max_samples_, compiled.n_features_in_)


def test_wrong_shapes_raise(fitted):
    _, compiled, X = fitted
    n = compiled.n_features_in_
    for bad in (X[:, :-1], np.hstack([X, X[:, :1]]), X[0], X[None]):
        with pytest.raises(ValueError, match=rf"\(n_samples, {n}\)"):
            compiled.score_samples(bad)
    for bad in (X[0, :-1], np.append(X[0], 1.0), X[:1]):
        with pytest.raises(ValueError, match=f"{n} features"):
            compiled.score_one(bad)


def test_corrupt_arrays_raise(fitted):
    _, compiled, _ = fitted
    arrays = compiled.to_arrays()
    with pytest.raises(ValueError, match="lack"):
        CompiledForest.from_arrays({k: v for k, v in arrays.items() if k != "leaf_value"})
    with pytest.raises(ValueError, match="format"):
        CompiledForest.from_arrays({**arrays, "format_version": np.int64(99)})
    roots = arrays["roots"]
    inner = np.flatnonzero(arrays["left"] >= 0)
    node = inner[~np.isin(inner, roots)][0]
    own_root = roots[np.searchsorted(roots, node, side="right") - 1]
    for child, message in [(len(arrays["left"]), "out of range"), (own_root, "reached twice"),
                           (node, "reached twice")]:
        left = arrays["left"].copy()
        left[node] = child
        with pytest.raises(ValueError, match=message):
            CompiledForest.from_arrays({**arrays, "left": left})


def test_unfitted_model_raises():
    with pytest.raises(ValueError, match="not fitted"):
        CompiledForest.from_sklearn(IsolationForest())
