"""CLI: `amlwatch report lvtr|str|ratings` and `amlwatch watchlist add|remove|show|hash` (docs/REPORTING.md).

Thin handlers: read the input, call the pure logic, write the output. Every request is checked
before anything is written, so a malformed one leaves files and archives as they were.
"""

from __future__ import annotations

import os
import sys
from datetime import datetime, timezone
from pathlib import Path

import orjson

from amlwatch.config import load_config


def add_commands(commands) -> None:
    p = commands.add_parser("report", help="large-value and suspicious transaction report drafts, risk ratings")
    reports = p.add_subparsers(metavar="REPORT")

    q = reports.add_parser("lvtr", help="large-value transaction reports of one day (HVTR XML, JSON or CSV)")
    q.add_argument("--day", required=True, help="reporting day YYYY-MM-DD (in [lvtr] day_offset, +08:00 by default)")
    _add_source(q)
    q.add_argument("--stored", action="store_true",
                   help="with --archive: the report records kept in the archive instead of recomputing them")
    q.add_argument("--format", choices=("xml", "json", "csv"), default="xml")
    q.add_argument("--out", default="-", help="output file (default stdout)")
    q.add_argument("--config")
    q.set_defaults(handler=cmd_lvtr)

    q = reports.add_parser("str", help="a suspicious transaction report draft from alerts or a case (BSTR XML or JSON)")
    q.add_argument("--alerts", help="alerts JSONL (all of them are reported, or those the case names)")
    q.add_argument("--case-file", help="case export JSON: case_id, disposition, notes, alert_ids")
    q.add_argument("--case", help="case id in the analyst console's store (its alerts and events come from there)")
    q.add_argument("--db", help="with --case: the console's database URL or SQLite path "
                                "(default $AMLWATCH_CONSOLE_DB or ./console.db)")
    q.add_argument("--draft-anyway", action="store_true",
                   help="with --case: draft a case not (yet) closed as confirmed suspicious with approval, for review")
    _add_source(q, required=False)
    q.add_argument("--kind", default="normal", help="normal, supplement, correction, delete or resend")
    q.add_argument("--original", help="report id of the original report (supplement, correction, delete, resend)")
    q.add_argument("--format", choices=("xml", "json"), default="xml")
    q.add_argument("--out", default="-")
    q.add_argument("--record", help="keep the draft in this record archive (audit stream)")
    q.add_argument("--config")
    q.set_defaults(handler=cmd_str)

    q = reports.add_parser("ratings", help="customer risk ratings (per account and per person)")
    _add_source(q)
    q.add_argument("--labels", help="analysts' dispositions (labels.jsonl)")
    q.add_argument("--stored", action="store_true", help="with --archive: the ratings kept in the archive")
    q.add_argument("--account", help="only this account's ratings (and its person's)")
    q.add_argument("--history", action="store_true", help="every rating change, not just each subject's latest")
    q.add_argument("--subject", choices=("account", "person", "all"), default="all")
    q.add_argument("--format", choices=("json", "csv"), default="json")
    q.add_argument("--no-model", action="store_true", help="rules only, no anomaly model")
    q.add_argument("--out", default="-")
    q.add_argument("--config")
    q.set_defaults(handler=cmd_ratings)

    p = commands.add_parser("watchlist", help="block and watch lists (hashes only, change-logged)")
    lists = p.add_subparsers(metavar="ACTION")
    for action in ("add", "remove"):
        q = lists.add_parser(action, help=f"{action} one entry (a raw value is hashed as the contract does)")
        q.add_argument("value")
        q.add_argument("--kind", required=True, choices=("id", "card", "phone", "device", "account"))
        q.add_argument("--list", dest="list_name", choices=("block", "watch"), default="block")
        q.add_argument("--file", help="the watchlist change log (JSON Lines)")
        q.add_argument("--topic", help="also (or instead) publish the entry's state to this compacted topic")
        q.add_argument("--bootstrap", help="Kafka bootstrap for --topic (default: the config's [kafka] bootstrap)")
        q.add_argument("--config")
        q.add_argument("--hashed", action="store_true", help="VALUE is already the contract's SHA-256 hash")
        q.add_argument("--effective", help="event time it applies from (ISO-8601 with offset; default now)")
        q.add_argument("--reason", default="")
        q.add_argument("--by", default=os.environ.get("USER", ""), help="who made the change (audit)")
        q.add_argument("--archive", help="also record the change in this record archive's audit stream")
        q.set_defaults(handler=cmd_watchlist_change, op=action)
    q = lists.add_parser("show", help="entries in force at a time")
    q.add_argument("--file", required=True, action="append")
    q.add_argument("--at", help="event time (ISO-8601 with offset; default: all entries ever)")
    q.set_defaults(handler=cmd_watchlist_show)
    q = lists.add_parser("hash", help="print the contract hash of a raw value")
    q.add_argument("value")
    q.add_argument("--kind", required=True, choices=("id", "card", "phone", "name"))
    q.set_defaults(handler=cmd_watchlist_hash)


def _add_source(parser, required: bool = True) -> None:
    group = parser.add_mutually_exclusive_group(required=required)
    group.add_argument("--events", help="recorded stream (JSON Lines, plain or .gz)")
    group.add_argument("--archive", help="record archive directory")


def _records(args):
    from amlwatch.records import iter_archived_events
    from amlwatch.sources import read_lines

    return iter_archived_events(args.archive) if args.archive else read_lines(args.events)


def _write(path: str, data: bytes) -> None:
    if path == "-":
        sys.stdout.buffer.write(data)
        return
    tmp = Path(f"{path}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def run_reporting(records, config, *, lvtr: bool, ratings: bool, with_detectors: bool, with_model: bool = False,
                  dispositions=None):
    """Replay `records` through the core with the reporting hook; the records it produced."""
    from amlwatch.cli import build_monitor
    from amlwatch.deadletter import DeadLetterFile
    from amlwatch.detectors.monitor import Monitor
    from amlwatch.replay import replay
    from amlwatch.reporting.pipeline import ListSink, ReportingMonitor

    core = build_monitor(config, with_model=with_model) if with_detectors else Monitor(config, only=frozenset())
    sink = ListSink()
    monitor = ReportingMonitor(core, config, sink, dispositions=dispositions, lvtr=lvtr, ratings=ratings)
    dead = DeadLetterFile(None)
    replay(records, monitor, lambda alerts: None, dead)
    return sink.records, dead.count


def cmd_lvtr(args) -> int:
    from amlwatch.reporting.exports import lvtr_csv, to_json
    from amlwatch.reporting.pipeline import archived_records
    from amlwatch.reporting.xml import hvtr_xml
    from amlwatch.reporting.str_draft import ReportRequestError

    config = load_config(args.config)
    try:
        datetime.strptime(args.day, "%Y-%m-%d")
    except ValueError:
        raise ReportRequestError("--day", f"expected YYYY-MM-DD, got {args.day!r}") from None
    if args.stored:
        if not args.archive:
            raise ReportRequestError("--stored", "reads an archive: give --archive DIR")
        records = list(archived_records(args.archive, "lvtr"))
    else:
        records, bad = run_reporting(_records(args), config, lvtr=True, ratings=False, with_detectors=False)
        if bad:
            print(f"amlwatch: {bad} bad records skipped (they are dead letters of the replay)", file=sys.stderr)
    reports = [r for r in records if r.get("record_type") == "lvtr" and r["day"] == args.day]
    if args.format == "xml":
        data = hvtr_xml(reports, args.day, institution_name=config.lvtr.institution_name,
                        institution_code=config.lvtr.institution_code, day_offset=config.lvtr.day_offset)
    elif args.format == "json":
        data = to_json(reports)
    else:
        data = lvtr_csv(reports)
    _write(args.out, data)
    late = [r for r in records if r.get("record_type") == "lvtr_late_unassessed" and r["day"] == args.day]
    print(f"{len(reports)} large-value report(s) for {args.day}"
          + (f"; {len(late)} trade(s) arrived too long after the day closed to assess, by hand: "
             + ", ".join(sorted({r['trade']['trade_id'] for r in late})) if late else ""), file=sys.stderr)
    return 0


def cmd_str(args) -> int:
    from amlwatch.reporting.exports import to_json
    from amlwatch.reporting.str_draft import (
        ReportRequestError,
        StrContext,
        StrRequest,
        build_str,
        check_request,
        parse_alerts,
        parse_case,
    )
    from amlwatch.reporting.xml import bstr_xml
    from amlwatch.sources import read_lines

    config = load_config(args.config)
    if args.case:
        if args.alerts or args.case_file:
            raise ReportRequestError("--case", "reads the case and its alerts from the console's store; --alerts "
                                               "and --case-file are for a case exported to files")
        draft, data, store = _case_draft(args, config)
    else:
        if not args.alerts:
            raise ReportRequestError("--alerts", "give the alerts (--alerts FILE) or a console case (--case ID)")
        if args.draft_anyway or args.db:
            raise ReportRequestError("--draft-anyway" if args.draft_anyway else "--db", "goes with --case ID")
        alerts = parse_alerts(read_lines(args.alerts), args.alerts)
        case = None
        if args.case_file:
            try:
                obj = orjson.loads(Path(args.case_file).read_bytes())
            except orjson.JSONDecodeError as error:
                raise ReportRequestError(args.case_file, f"invalid JSON: {error}") from None
            case, alerts = parse_case(obj, {a["alert_id"]: a for a in alerts}, args.case_file)
        request = StrRequest(alerts, args.kind, args.original, case)
        check_request(request)
        context = None
        if args.events or args.archive:
            context = StrContext.from_events(_records(args), {t for a in alerts for t in a["trade_ids"]})
        draft = build_str(request, context, config.str_report)
        data, store = bstr_xml(draft) if args.format == "xml" else to_json(draft), None
    if args.record:
        from amlwatch.records import RecordArchive
        from amlwatch.reporting.pipeline import ArchiveRecordSink

        with RecordArchive(args.record) as archive:
            ArchiveRecordSink(archive)([draft])
            archive.commit()
    if store is not None:
        store()
    _write(args.out, data)
    print(f"report {draft['report_id']} (kind {draft['message_kind']}, urgency {draft['urgency']}): "
          f"{len(draft['alerts'])} alert(s), {len(draft['transactions'])} transaction(s), "
          f"{len(draft['subjects'])} subject(s)", file=sys.stderr)
    return 0


def _case_draft(args, config):
    """The draft of console case `--case` (amlwatch/console/reports.py), its document, and a callable that
    records the drafting in the console's audit log (called once the request has passed every check)."""
    import getpass

    from amlwatch.console import audit
    from amlwatch.console.db import database_url, open_engine
    from amlwatch.console.reports import case_str, parse_case_id
    from amlwatch.reporting.exports import to_json
    from amlwatch.reporting.str_draft import ReportRequestError, StrContext
    from amlwatch.reporting.xml import bstr_xml

    case_id = parse_case_id(args.case)
    url = database_url(args.db)
    if url.startswith("sqlite:///") and not Path(url[len("sqlite:///"):]).exists():
        raise ReportRequestError("--db", f"no console store at {url[len('sqlite:///'):]} (give --db or "
                                         "$AMLWATCH_CONSOLE_DB)")
    engine = open_engine(url)
    try:
        with engine.connect() as conn:
            context = None
            if args.events or args.archive:
                from amlwatch.console.reports import case_alert_lines, load_case

                lines = case_alert_lines(conn, load_case(conn, case_id, draft_anyway=args.draft_anyway))
                ids = {t for _, line in lines for t in orjson.loads(line).get("trade_ids", [])}
                context = StrContext.from_events(_records(args), ids)
            draft = case_str(conn, case_id, config=config.str_report, message_kind=args.kind, original=args.original,
                             draft_anyway=args.draft_anyway, context=context)
    except BaseException:
        engine.dispose()
        raise
    data = bstr_xml(draft) if args.format == "xml" else to_json(draft)

    def store():
        try:
            with engine.begin() as conn:
                audit.append(conn, f"cli:{getpass.getuser()}", "case.report_str", f"case:{case_id}",
                             report_audit_detail(draft, args.format, data, args.draft_anyway))
        finally:
            engine.dispose()
    return draft, data, store


def report_audit_detail(draft: dict, fmt: str, data: bytes, draft_anyway: bool) -> dict:
    """What the console's audit log keeps of a drafted report: which report, in which form, and its digest."""
    import hashlib

    return {"report_id": draft["report_id"], "format": fmt, "message_kind": draft["message_kind"],
            "original_report_id": draft["original_report_id"], "draft_anyway": draft_anyway,
            "alerts": len(draft["alerts"]), "transactions": len(draft["transactions"]),
            "sha256": hashlib.sha256(data).hexdigest()}


def cmd_ratings(args) -> int:
    from amlwatch.reporting.exports import latest_ratings, ratings_csv, to_json
    from amlwatch.reporting.risk import Dispositions

    from amlwatch.reporting.pipeline import archived_records
    from amlwatch.reporting.str_draft import ReportRequestError

    config = load_config(args.config)
    if args.stored:
        if not args.archive:
            raise ReportRequestError("--stored", "reads an archive: give --archive DIR")
        records = list(archived_records(args.archive, "risk_rating"))
    else:
        dispositions = Dispositions.load(args.labels) if args.labels else None
        records, _ = run_reporting(_records(args), config, lvtr=False, ratings=True, with_detectors=True,
                                   with_model=not args.no_model, dispositions=dispositions)
    ratings = [r for r in records if r["record_type"] == "risk_rating"
               and (args.subject == "all" or r["subject_kind"] == args.subject)]
    if args.account:
        ratings = [r for r in ratings if r["subject"] == args.account or args.account in r.get("accounts", ())]
    if not args.history:
        ratings = latest_ratings(ratings)
    _write(args.out, to_json(ratings) if args.format == "json" else ratings_csv(ratings))
    levels = {level: sum(r["level"] == level for r in ratings) for level in ("low", "medium", "high")}
    print(f"{len(ratings)} rating(s): {levels}", file=sys.stderr)
    return 0


def cmd_watchlist_change(args) -> int:
    from amlwatch.events import BadRecord, parse_time
    from amlwatch.reporting.hashing import HASHED_KINDS, contract_hash
    from amlwatch.reporting.watchlist import WatchlistError, parse_change, read_changes

    if not args.file and not args.topic:
        raise WatchlistError("--file", "give the change log (--file) and/or a compacted topic (--topic)")
    value = args.value
    if args.kind in HASHED_KINDS and not args.hashed:
        value = contract_hash(args.kind, value)
    now = datetime.now(timezone.utc)
    effective = args.effective or now.isoformat(timespec="seconds")
    try:
        parse_time(effective, "--effective")
    except BadRecord as error:
        raise WatchlistError("--effective", error.reason) from None
    change = parse_change({"op": args.op, "list": args.list_name, "kind": args.kind, "value": value,
                           "effective": effective, "at": now.isoformat(timespec="milliseconds"),
                           "by": args.by, "reason": args.reason}, "request")
    path = Path(args.file) if args.file else None
    if path is not None and path.exists():
        read_changes(path)  # a malformed log is refused before it grows
    if args.topic:
        _publish(args, change)
    if path is not None:
        with open(path, "ab") as handle:
            handle.write(orjson.dumps(change) + b"\n")
            handle.flush()
            os.fsync(handle.fileno())
    if args.archive:
        from amlwatch.records import RecordArchive

        with RecordArchive(args.archive) as archive:
            archive.append_audit(f"watchlist.{args.op}", change=change, file=str(path) if path else None,
                                 topic=args.topic)
            archive.commit()
    print(f"{args.op} {args.list_name} {args.kind} {value} effective {effective}", file=sys.stderr)
    return 0


def _publish(args, change: dict) -> None:
    """The entry's new state on the compacted topic: an add opens it, a remove closes the open one."""
    from amlwatch.reporting.watchlist import WatchlistError, _iso
    from amlwatch.reporting.watchlist_topic import ensure_topic, publish_state, read_topic_entries

    bootstrap = args.bootstrap or load_config(args.config).kafka.bootstrap
    ensure_topic(bootstrap, args.topic)
    state = {k: change[k] for k in ("list", "kind", "value", "effective", "at", "by", "reason")}
    state["until"] = None
    if change["op"] == "remove":
        current = [e for e in read_topic_entries(bootstrap, args.topic)
                   if (e.list, e.kind, e.value) == (change["list"], change["kind"], change["value"])]
        if not current or current[0].until != float("inf"):
            raise WatchlistError("value", f"no {change['list']} {change['kind']} entry in force on {args.topic}")
        state["effective"], state["until"] = _iso(current[0].since), change["effective"]
        state["reason"] = current[0].reason
        state["removed_by"], state["removal_reason"] = change["by"], change["reason"]
    publish_state(bootstrap, args.topic, state)


def cmd_watchlist_show(args) -> int:
    from amlwatch.events import parse_time
    from amlwatch.reporting.watchlist import Watchlist, _iso

    watchlist = Watchlist.from_files(args.file)
    at = parse_time(args.at, "--at").timestamp() if args.at else None
    for entry in watchlist.entries:
        if at is None or entry.active(at):
            sys.stdout.write(orjson.dumps({"list": entry.list, "kind": entry.kind, "value": entry.value,
                                           "since": _iso(entry.since), "until": _iso(entry.until),
                                           "reason": entry.reason, "by": entry.by}).decode() + "\n")
    return 0


def cmd_watchlist_hash(args) -> int:
    from amlwatch.reporting.hashing import contract_hash

    print(contract_hash(args.kind, args.value))
    return 0


def with_reports(stack, monitor, config, reports_path, record, since: float | None = None):
    """The replay hook of `amlwatch replay --reports FILE [--record DIR]`: the monitor wrapped so its
    large-value reports and ratings go to FILE (and, with --record, to the archive's audit stream).

    Returns the wrapped monitor and what `archive_replay` should write to (an open `RecordArchive`
    closed by `stack`, or None). `since` (--since, epoch seconds) holds back the days and ratings before it."""
    from amlwatch.records import open_archive
    from amlwatch.reporting.pipeline import ArchiveRecordSink, JsonLinesSink, ReportingMonitor

    sink = JsonLinesSink(stack.enter_context(open(reports_path, "wb")))
    if record:
        record = stack.enter_context(open_archive(record, config))
        sink = ArchiveRecordSink(record, sink)
    return ReportingMonitor(monitor, config, sink, since=since), record
