"""`amlwatch config show`: effective config and hash; an invalid config exits 2 naming the key in one line."""

from __future__ import annotations

import tomllib

import orjson
import pytest

from amlwatch.cli import main
from amlwatch.config import Config, load_config


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    import os

    for name in list(os.environ):
        if name.startswith("AMLWATCH_"):
            monkeypatch.delenv(name)


def _run(capsys, *argv) -> tuple[int, str, str]:
    code = main(["config", "show", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_defaults_as_toml_that_reads_back_equal(capsys, tmp_path):
    code, out, err = _run(capsys)
    assert code == 0 and err == ""
    assert out.splitlines()[0] == f"# amlwatch effective configuration, hash {Config().hash}"
    data = tomllib.loads(out)
    assert set(data) == set(Config().to_dict())
    path = tmp_path / "shown.toml"
    path.write_text(out)
    assert load_config(path, env={}) == Config()
    assert "# threshold is unset" in out


def test_json_has_hash_and_the_file_and_env_values(capsys, tmp_path, monkeypatch):
    path = tmp_path / "c.toml"
    path.write_text('[wash]\nwindow_days = 14\n[service]\nworker_id = "w-1"\n')
    monkeypatch.setenv("AMLWATCH_STRUCTURING__WINDOW_HOURS", "12")
    monkeypatch.setenv("AMLWATCH_SERVICE__METRICS_PORT", "9500")
    monkeypatch.setenv("AMLWATCH_KAFKA_BOOTSTRAP", "kafka-0:9092,kafka-1:9092")
    code, out, _ = _run(capsys, "--config", str(path), "--json")
    assert code == 0
    shown = orjson.loads(out)
    config = shown["config"]
    assert config["wash"]["window_days"] == 14.0 and config["structuring"]["window_hours"] == 12.0
    assert config["service"] == {**Config().to_dict()["service"], "worker_id": "w-1", "metrics_port": 9500}
    assert config["kafka"]["bootstrap"] == "kafka-0:9092,kafka-1:9092"
    expected = Config.from_mapping({"wash": {"window_days": 14}, "structuring": {"window_hours": 12}})
    assert shown["hash"] == expected.hash != Config().hash


def test_config_file_from_the_environment(capsys, tmp_path, monkeypatch):
    path = tmp_path / "c.toml"
    path.write_text("[wash]\nrebuy_min = 5\n")
    monkeypatch.setenv("AMLWATCH_CONFIG", str(path))
    code, out, _ = _run(capsys, "--json")
    assert code == 0 and orjson.loads(out)["config"]["wash"]["rebuy_min"] == 5


def test_operational_values_do_not_change_the_shown_hash(capsys, monkeypatch):
    monkeypatch.setenv("AMLWATCH_SERVICE__LOG_LEVEL", "DEBUG")
    monkeypatch.setenv("AMLWATCH_ARCHIVE__DIR", "/var/lib/amlwatch/records")
    code, out, _ = _run(capsys, "--json")
    assert code == 0 and orjson.loads(out)["hash"] == Config().hash


@pytest.mark.parametrize("toml,env,key", [
    ("[wash]\nwindow_days = -1\n", {}, "wash.window_days"),
    ('[wash]\nwindow_days = "a month"\n', {}, "wash.window_days"),
    ("[wash]\nwindowdays = 3\n", {}, "wash.windowdays"),
    ("[washing]\nwindow_days = 3\n", {}, "washing"),
    ("[monitor]\nholding_horizon_days = 90\n", {}, "monitor.holding_horizon_days"),
    ("", {"AMLWATCH_SERVICE__METRICS_PORT": "70000"}, "service.metrics_port"),
    ("", {"AMLWATCH_SERVICE__LOG_LEVEL": "LOUD"}, "service.log_level"),
    ("", {"AMLWATCH_SERVICE__PORT": "1"}, "service.port"),
])
def test_invalid_config_exits_2_with_one_line_naming_the_key(capsys, tmp_path, monkeypatch, toml, env, key):
    path = tmp_path / "bad.toml"
    path.write_text(toml)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    code, out, err = _run(capsys, "--config", str(path))
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1
    assert err.startswith(f"amlwatch: error: config {key}:"), err


def test_config_without_action_prints_help_and_exits_2(capsys):
    assert main(["config"]) == 2
    assert "show" in capsys.readouterr().out
