"""Watchlists: effective-dated change logs, reloads, screening at registration, KYC update and trade."""

from __future__ import annotations

import hashlib
import os

import orjson
import pytest
from support.events import account, at, card_of, id_of, monitor_run, phone_of, trade, world

from amlwatch.cli import main
from amlwatch.config import Config
from amlwatch.reporting.hashing import contract_hash
from amlwatch.reporting.watchlist import Watchlist, WatchlistError


def _change(path, op="add", lst="block", kind="id", value=None, effective=None, **kw):
    record = {"op": op, "list": lst, "kind": kind, "value": value or id_of("acc-bad"), **kw}
    if effective:
        record["effective"] = effective
    with open(path, "ab") as handle:
        handle.write(orjson.dumps(record) + b"\n")


def _config(path) -> Config:
    return Config.from_mapping({"watchlist": {"files": [str(path)]}})


def _hits(alerts):
    return [a for a in alerts if a.detector == "watchlist.hit"]


def test_registration_kyc_update_and_trade_are_screened(tmp_path):
    lists = tmp_path / "lists.jsonl"
    _change(lists)
    events = world("acc-s", t=at(hours=-1))
    events += [account("acc-bad", at(), kyc_level=1),  # below KYC 2: no national ID yet, no hit
               account("acc-bad", at(minutes=5), action="verify", kyc_level=2),
               trade("acc-s", "acc-bad", at(hours=1), price="50.00")]
    _, alerts = monitor_run(events, _config(lists))
    hits = _hits(alerts)
    assert [a.evidence.get("action") for a in hits] == ["verify", None]
    assert all(a.severity == "critical" and a.typology == "identity_mismatch" for a in hits)
    assert hits[1].trade_ids == [events[-1]["trade_id"]] and "acc-bad" in hits[1].accounts
    assert hits[1].evidence["hits"][0] | {"reason": ""} == {
        "list": "block", "kind": "id", "value": id_of("acc-bad"), "role": "buyer", "field": "id_hash",
        "account": "acc-bad", "reason": "", "listed_by": ""}


@pytest.mark.parametrize("kind, value, field", [
    ("phone", phone_of("acc-b"), "phone_hash"), ("card", card_of("acc-b"), "bank_card_hashes"),
    ("device", "dev-acc-b", "devices"), ("account", "acc-b", "account_id")])
def test_every_kind_of_entry_hits_on_a_trade(tmp_path, kind, value, field):
    lists = tmp_path / "lists.jsonl"
    _change(lists, lst="watch", kind=kind, value=value)
    events = world("acc-s", "acc-b") + [trade("acc-s", "acc-b", at(hours=1))]
    hits = [a for a in _hits(monitor_run(events, _config(lists))[1]) if a.trade_ids]
    assert len(hits) == 1 and hits[0].severity == "medium"
    assert field in {h["field"] for h in hits[0].evidence["hits"]}


def test_honest_parties_and_no_lists_raise_nothing(tmp_path):
    lists = tmp_path / "lists.jsonl"
    _change(lists)
    events = world("acc-s", "acc-b") + [trade("acc-s", "acc-b", at(hours=1))]
    assert _hits(monitor_run(events, _config(lists))[1]) == []
    assert _hits(monitor_run(events)[1]) == []


def test_an_entry_applies_from_its_effective_time_until_removed(tmp_path):
    lists = tmp_path / "lists.jsonl"
    _change(lists, kind="account", value="acc-b", effective=at(hours=2))
    _change(lists, op="remove", kind="account", value="acc-b", effective=at(hours=4))
    events = world("acc-s", "acc-b")
    events += [trade("acc-s", "acc-b", at(hours=h), token_id=f"t{h}") for h in (1, 3, 5)]
    hits = [a for a in _hits(monitor_run(events, _config(lists))[1]) if a.trade_ids]
    assert [a.trade_ids for a in hits] == [[events[-2]["trade_id"]]]


def test_reload_picks_up_a_change_and_a_malformed_file_keeps_the_lists_in_force(tmp_path):
    lists = tmp_path / "lists.jsonl"
    _change(lists, kind="account", value="acc-1")
    watchlist = Watchlist.from_files([lists])
    assert not watchlist.reload()
    _change(lists, kind="account", value="acc-2")
    os.utime(lists, ns=(1, 1))
    assert watchlist.reload() and len(watchlist) == 2 and watchlist.version == 2
    good = lists.read_bytes()
    with open(lists, "ab") as handle:
        handle.write(b'{"op": "add", "list": "block", "kind": "id", "value": "not-a-hash"}\n')
    with pytest.raises(WatchlistError) as error:
        watchlist.reload()
    assert error.value.field == "value" and error.value.source.endswith(":3")
    assert len(watchlist) == 2 and watchlist.lookup("account", "acc-2", 0.0)
    assert lists.read_bytes().startswith(good)


@pytest.mark.parametrize("line, field", [
    (b"{", "<json>"), (b'{"op": "put", "list": "block", "kind": "id", "value": "x"}', "op"),
    (b'{"op": "add", "list": "grey", "kind": "id", "value": "x"}', "list"),
    (b'{"op": "add", "list": "block", "kind": "ip", "value": "x"}', "kind"),
    (b'{"op": "add", "list": "block", "kind": "card", "value": "6222021234567890"}', "value"),
    (b'{"op": "add", "list": "block", "kind": "account", "value": "a", "effective": "yesterday"}', "effective")])
def test_malformed_changes_are_refused_naming_the_field(tmp_path, line, field):
    lists = tmp_path / "lists.jsonl"
    lists.write_bytes(line + b"\n")
    with pytest.raises(WatchlistError) as error:
        Watchlist.from_files([lists])
    assert error.value.field == field


def test_cli_add_hashes_a_raw_value_as_the_contract_does_and_audits(tmp_path, capsys):
    lists, archive = tmp_path / "lists.jsonl", tmp_path / "records"
    assert main(["watchlist", "add", "--kind", "id", " 11010519491231002x ", "--file", str(lists), "--reason",
                 "court order", "--by", "analyst-7", "--archive", str(archive)]) == 0
    change = orjson.loads(lists.read_bytes())
    expected = hashlib.sha256(b"11010519491231002X").hexdigest()
    assert change["value"] == expected == contract_hash("id", "11010519491231002X")
    assert (change["by"], change["reason"], change["op"], change["list"]) == ("analyst-7", "court order", "add", "block")
    from amlwatch.records import ArchiveReader

    audit = [r for r in ArchiveReader(archive).iter_stream("audit")]
    assert audit[0]["action"] == "watchlist.add" and audit[0]["change"]["value"] == expected
    assert main(["watchlist", "add", "--kind", "phone", "+86 138-0013-8000", "--file", str(lists), "--list", "watch"]) == 0
    assert orjson.loads(lists.read_bytes().splitlines()[1])["value"] == hashlib.sha256(b"13800138000").hexdigest()
    assert main(["watchlist", "add", "--kind", "device", "dev-9", "--file", str(lists)]) == 0
    assert orjson.loads(lists.read_bytes().splitlines()[2])["value"] == "dev-9"


def test_cli_malformed_request_is_a_clear_error_and_the_file_is_unchanged(tmp_path, capsys):
    lists = tmp_path / "lists.jsonl"
    _change(lists, kind="account", value="acc-1")
    before = lists.read_bytes()
    assert main(["watchlist", "add", "--kind", "card", "12ab", "--file", str(lists)]) == 2
    assert "card" in capsys.readouterr().err
    assert main(["watchlist", "add", "--kind", "id", "deadbeef", "--hashed", "--file", str(lists)]) == 2
    assert "SHA-256" in capsys.readouterr().err
    assert main(["watchlist", "add", "--kind", "account", "a", "--effective", "soon", "--file", str(lists)]) == 2
    assert lists.read_bytes() == before


def test_a_snapshot_keeps_the_file_names_and_a_restore_reads_the_lists_as_they_are_now(tmp_path):
    import pickle

    lists = tmp_path / "lists.jsonl"
    _change(lists, kind="account", value="acc-1")
    watchlist = Watchlist.from_files([lists])
    blob = pickle.dumps(watchlist)
    assert b"acc-1" not in blob
    _change(lists, kind="account", value="acc-2")
    restored = pickle.loads(blob)
    assert len(restored) == 2 and restored.lookup("account", "acc-2", 0.0)
    in_memory = pickle.loads(pickle.dumps(Watchlist(watchlist.entries)))
    assert len(in_memory) == 1


def test_cli_remove_ends_an_entry_and_show_lists_what_is_in_force(tmp_path, capsys):
    lists = tmp_path / "lists.jsonl"
    assert main(["watchlist", "add", "--kind", "account", "acc-9", "--file", str(lists),
                 "--effective", "2026-03-01T00:00:00+08:00"]) == 0
    assert main(["watchlist", "remove", "--kind", "account", "acc-9", "--file", str(lists),
                 "--effective", "2026-03-02T00:00:00+08:00"]) == 0
    capsys.readouterr()
    assert main(["watchlist", "show", "--file", str(lists), "--at", "2026-03-01T12:00:00+08:00"]) == 0
    shown = [orjson.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(e["value"], e["until"]) for e in shown] == [("acc-9", "2026-03-01T16:00:00+00:00")]
    assert main(["watchlist", "show", "--file", str(lists), "--at", "2026-03-02T12:00:00+08:00"]) == 0
    assert capsys.readouterr().out == ""
