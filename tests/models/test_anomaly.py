"""The anomaly model end to end: features, training, artifact, detector, drift."""

from __future__ import annotations

import orjson
import numpy as np
import pytest

from amlwatch.cli import main as cli_main
from amlwatch.config import Config
from amlwatch.evaluation import load_labels
from amlwatch.models.artifact import DEFAULT_MODEL_DIR, ModelError, load_model
from amlwatch.models.drift import population_stability
from amlwatch.models.features import FEATURE_NAMES, FEATURE_VERSION
from amlwatch.models.training import collect_features, fit_model, train
from amlwatch.simulator import simulate


@pytest.fixture(scope="module")
def stream(tmp_path_factory):
    out = tmp_path_factory.mktemp("sim")
    simulate(out, seed=21, days=10, accounts=600)
    return out


@pytest.fixture(scope="module")
def model_dir(stream, tmp_path_factory):
    out = tmp_path_factory.mktemp("model")
    labels = load_labels(stream / "labels.jsonl")
    train([stream / "events.jsonl.gz"], out, seed=3, exclude_trade_ids=set(labels))
    return out


def test_features_are_named_finite_and_one_row_per_trade(stream):
    X, trade_ids, data_hash = collect_features([stream / "events.jsonl.gz"])
    assert X.shape == (len(trade_ids), len(FEATURE_NAMES))
    assert len(set(trade_ids)) == len(trade_ids)
    assert np.isfinite(X).all()
    assert data_hash.startswith("sha256:")


def test_training_twice_gives_the_same_model_id(stream, model_dir, tmp_path):
    labels = load_labels(stream / "labels.jsonl")
    again = train([stream / "events.jsonl.gz"], tmp_path / "again", seed=3, exclude_trade_ids=set(labels))
    other_seed = train([stream / "events.jsonl.gz"], tmp_path / "other", seed=4, exclude_trade_ids=set(labels))
    first = load_model(model_dir)
    assert again.model_id == first.model_id
    assert other_seed.model_id != first.model_id
    meta = first.metadata
    assert meta["feature_version"] == FEATURE_VERSION and meta["feature_names"] == list(FEATURE_NAMES)
    assert meta["training_rows"] > 1000 and 0 < meta["threshold"] < 1
    assert {"sklearn_version", "params", "training_data_hash", "created", "quantiles"} <= meta.keys()


def test_a_model_with_another_feature_version_is_refused(model_dir, tmp_path):
    meta = orjson.loads((model_dir / "model.json").read_bytes())
    meta["feature_version"] = "trade-features/0"
    (tmp_path / "model.json").write_bytes(orjson.dumps(meta))
    (tmp_path / "forest.npz").write_bytes((model_dir / "forest.npz").read_bytes())
    with pytest.raises(ModelError, match="trade-features/0.*retrain") as caught:
        load_model(tmp_path)
    assert caught.value.field == "feature_version"


def test_a_tampered_model_is_refused(model_dir, tmp_path):
    meta = orjson.loads((model_dir / "model.json").read_bytes())
    meta["threshold"] = 0.01
    (tmp_path / "model.json").write_bytes(orjson.dumps(meta))
    (tmp_path / "forest.npz").write_bytes((model_dir / "forest.npz").read_bytes())
    with pytest.raises(ModelError, match="does not match its id"):
        load_model(tmp_path)


def test_anomaly_alerts_name_the_unusual_features(stream, model_dir, tmp_path):
    alerts_path = tmp_path / "alerts.jsonl"
    config = tmp_path / "config.toml"
    # A 10-day, 600-account stream has small collections: a larger budget and a short warm-up let them alert.
    config.write_text(f'[anomaly]\nmodel_dir = "{model_dir}"\nbudget = 0.02\nwarmup_trades = 50\n')
    assert cli_main(["replay", str(stream / "events.jsonl.gz"), "--config", str(config),
                     "--alerts-out", str(alerts_path)]) == 0
    alerts = [orjson.loads(line) for line in alerts_path.read_bytes().splitlines()]
    anomalies = [a for a in alerts if a["typology"] == "anomaly"]
    assert anomalies
    model_id = load_model(model_dir).model_id
    for alert in anomalies:
        assert alert["detector"] == "anomaly.isolation_forest"
        assert alert["versions"]["model"] == model_id
        assert alert["evidence"]["anomaly_score"] >= alert["evidence"]["threshold"]
        assert alert["evidence"]["threshold"] >= alert["evidence"]["model_floor"]
        assert alert["evidence"]["budget"] == 0.02
        assert alert["severity"] != "critical"
        for feature in alert["evidence"]["unusual_features"]:
            assert feature["feature"] in FEATURE_NAMES
            assert not feature["p01"] <= feature["value"] <= feature["p99"]


def test_scores_rank_labelled_trades_above_honest_ones(stream, model_dir):
    X, trade_ids, _ = collect_features([stream / "events.jsonl.gz"])
    scores = load_model(model_dir).anomaly_scores(X)
    labels = load_labels(stream / "labels.jsonl")
    suspicious = np.array([t in labels and labels[t] != {"prohibited_asset"} for t in trade_ids])
    # Mann-Whitney AUC: the chance a labelled trade outscores an honest one (prohibited assets are
    # honest-looking trades of a forbidden collection, so they are left out).
    ranks = scores.argsort().argsort() + 1
    n_pos, n_neg = suspicious.sum(), (~suspicious).sum()
    auc = (ranks[suspicious].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
    assert auc > 0.6, auc


def test_drift_report_is_stable_on_like_traffic_and_flags_shifted_traffic(stream):
    X, _, data_hash = collect_features([stream / "events.jsonl.gz"])
    order = np.random.default_rng(0).permutation(len(X))
    fitted, held_out = X[order[: len(X) // 2]], X[order[len(X) // 2:]]
    model = fit_model(fitted, data_hash=data_hash)
    assert not population_stability(model, held_out).retrain
    shifted = held_out.copy()
    shifted[:, FEATURE_NAMES.index("log_price_over_floor")] += 2.0
    report = population_stability(model, shifted)
    assert report.retrain and report.significant == ["log_price_over_floor"]
    assert "Retrain" in report.verdict()


def test_the_shipped_default_model_loads_and_matches_this_feature_version():
    model = load_model(DEFAULT_MODEL_DIR)
    assert model.metadata["feature_version"] == FEATURE_VERSION
    assert Config().anomaly.model_dir == ""
