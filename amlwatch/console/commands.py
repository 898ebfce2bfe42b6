"""`amlwatch console ...`: serve the analyst console, manage its users, ingest, export labels, verify the audit log.

Every subcommand takes `--db URL` (or $AMLWATCH_CONSOLE_DB; default
./console.db, SQLite). `postgresql://user@host/db` uses PostgreSQL.
"""

from __future__ import annotations

import argparse
import getpass
import secrets
import sys
import threading

DEFAULT_PORT = 8700


def add_commands(commands) -> None:
    p = commands.add_parser("console", help="the analyst console: alert inbox, investigations, cases (web app)")
    _common(p, suppress=False)
    _serve_options(p)
    p.set_defaults(handler=cmd_serve)
    actions = p.add_subparsers(metavar="ACTION")

    q = actions.add_parser("serve", help="serve the console (the default action)")
    _common(q)
    _serve_options(q)
    q.set_defaults(handler=cmd_serve)

    q = actions.add_parser("user", help="manage console users")
    users = q.add_subparsers(metavar="ACTION")
    r = users.add_parser("add", help="create a user (asks for the password, or --password-stdin)")
    _common(r)
    r.add_argument("username")
    r.add_argument("--role", required=True, choices=("analyst", "supervisor", "admin"))
    r.add_argument("--password-stdin", action="store_true", help="read the password from the first line of stdin")
    r.add_argument("--generate-password", action="store_true", help="make a random password and print it once")
    r.set_defaults(handler=cmd_user_add)
    r = users.add_parser("list", help="list users and roles")
    _common(r)
    r.set_defaults(handler=cmd_user_list)

    q = actions.add_parser("migrate", help="create or upgrade the console's database schema")
    _common(q)
    q.set_defaults(handler=cmd_migrate)

    q = actions.add_parser("ingest", help="load alerts (files or the alert topic) and events (files or an archive)")
    _common(q)
    q.add_argument("--alerts", action="append", default=[], help="alerts JSONL file (repeatable)")
    q.add_argument("--events", action="append", default=[], help="events JSONL(.gz) file (repeatable)")
    q.add_argument("--archive", help="read events from this record archive")
    q.add_argument("--kafka", action="store_true", help="consume the alert topic ([kafka] config, AMLWATCH_KAFKA_BOOTSTRAP)")
    q.add_argument("--topic", help="alert topic (default: [kafka] alerts_topic)")
    q.add_argument("--group", default="amlwatch-console", help="the console's own consumer group")
    q.add_argument("--idle-timeout", type=float, help="stop after this many seconds without a new alert (default: follow)")
    q.add_argument("--from-start", action="store_true", help="re-read files from the first line (duplicates are ignored)")
    q.add_argument("--config", help="TOML config (for [kafka])")
    q.set_defaults(handler=cmd_ingest)

    q = actions.add_parser("ingest-errors", help="print the malformed alerts and events kept by ingest")
    _common(q)
    q.add_argument("--limit", type=int, default=100)
    q.set_defaults(handler=cmd_ingest_errors)

    q = actions.add_parser("labels", help="analysts' dispositions as labels")
    labels = q.add_subparsers(metavar="ACTION")
    r = labels.add_parser("export", help="write labels.jsonl (confirmed suspicious) for evaluate/backtest/train")
    _common(r)
    r.add_argument("out")
    r.add_argument("--negatives", help="also write trades closed as false positive here")
    r.set_defaults(handler=cmd_labels_export)

    q = actions.add_parser("audit", help="the console's audit log")
    audit_actions = q.add_subparsers(metavar="ACTION")
    r = audit_actions.add_parser("verify", help="check the hash chain; exit 1 naming any changed or missing entry")
    _common(r)
    r.set_defaults(handler=cmd_audit_verify)


def _common(p, *, suppress: bool = True) -> None:
    p.add_argument("--db", default=argparse.SUPPRESS if suppress else None,
                   help="database URL or SQLite path (default $AMLWATCH_CONSOLE_DB or ./console.db)")


def _serve_options(p) -> None:
    p.add_argument("--host", default=argparse.SUPPRESS, help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=argparse.SUPPRESS, help=f"port (default {DEFAULT_PORT})")
    p.add_argument("--follow-alerts", action="store_true", default=argparse.SUPPRESS,
                   help="also consume the alert topic while serving (own consumer group)")
    p.add_argument("--audit-pii-views", action="store_true", default=argparse.SUPPRESS,
                   help="record every account-page view in the audit log")
    p.add_argument("--secure-cookies", action="store_true", default=argparse.SUPPRESS,
                   help="mark cookies Secure (when served over HTTPS behind a proxy)")
    p.add_argument("--config", default=argparse.SUPPRESS,
                   help="TOML config whose [str_report], [lvtr] and [payment_kind] shape the report downloads")


def _engine(args):
    from amlwatch.console.db import open_engine

    return open_engine(getattr(args, "db", None))


def serve(engine, *, host: str = "127.0.0.1", port: int = DEFAULT_PORT, settings=None, banner: str = "",
          follow=None) -> None:
    import uvicorn

    from amlwatch.console.app import create_app
    from amlwatch.console.db import redacted

    stop = threading.Event()
    if follow is not None:
        threading.Thread(target=follow, args=(stop,), name="console-alert-ingest", daemon=True).start()
    print(f"amlwatch console on http://{host}:{port}/ (database {redacted(str(engine.url))}); Ctrl-C stops it"
          + (f"\n{banner}" if banner else ""), file=sys.stderr, flush=True)
    try:
        uvicorn.run(create_app(engine, settings), host=host, port=port, log_level="warning", access_log=False)
    finally:
        stop.set()


def cmd_serve(args) -> int:
    from amlwatch.config import load_config
    from amlwatch.console.web import Settings

    engine = _engine(args)
    follow = None
    if getattr(args, "follow_alerts", False):
        from amlwatch.console.ingest import ingest_alert_topic

        kafka = load_config(None).kafka

        def follow(stop):
            ingest_alert_topic(engine, kafka, group="amlwatch-console", stop=stop.is_set)
    serve(engine, host=getattr(args, "host", "127.0.0.1"), port=getattr(args, "port", DEFAULT_PORT),
          settings=Settings(audit_pii_views=getattr(args, "audit_pii_views", False),
                            secure_cookies=getattr(args, "secure_cookies", False),
                            config=load_config(getattr(args, "config", None))), follow=follow)
    return 0


def cmd_migrate(args) -> int:
    engine = _engine(args)
    print(f"schema up to date ({engine.dialect.name})", file=sys.stderr)
    return 0


def _password(args) -> str:
    if args.generate_password:
        return secrets.token_urlsafe(12)
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass(f"password for {args.username}: ")
    if getpass.getpass("again: ") != first:
        raise ValueError("password: the two entries differ")
    return first


def cmd_user_add(args) -> int:
    from amlwatch.console import audit
    from amlwatch.console.auth import AuthError, add_user

    password = _password(args)
    engine = _engine(args)
    try:
        with engine.begin() as conn:
            user = add_user(conn, args.username, password, args.role)
            audit.append(conn, f"cli:{getpass.getuser()}", "user.add", f"user:{user.username}", {"role": user.role})
    except AuthError as error:
        print(f"amlwatch: error: {error}", file=sys.stderr)
        return 2
    print(f"user {user.username} ({user.role}) added" + (f"; password: {password}" if args.generate_password else ""))
    return 0


def cmd_user_list(args) -> int:
    from sqlalchemy import select

    from amlwatch.console.schema import users

    with _engine(args).connect() as conn:
        for row in conn.execute(select(users).order_by(users.c.username)):
            print(f"{row.username:<24}{row.role:<12}{'active' if row.active else 'disabled'}")
    return 0


def cmd_ingest(args) -> int:
    from amlwatch.console import ingest

    engine = _engine(args)
    if not (args.alerts or args.events or args.archive or args.kafka):
        raise ValueError("ingest: name --alerts FILE, --events FILE, --archive DIR or --kafka")
    bad = 0
    for path in args.events:
        result = ingest.ingest_event_file(engine, path, from_start=args.from_start)
        print(result.line(f"events {path}"), file=sys.stderr)
        bad += result.malformed
    if args.archive:
        result = ingest.ingest_event_archive(engine, args.archive)
        print(result.line(f"events archive {args.archive}"), file=sys.stderr)
        bad += result.malformed
    for path in args.alerts:
        result = ingest.ingest_alert_file(engine, path, from_start=args.from_start)
        print(result.line(f"alerts {path}"), file=sys.stderr)
        bad += result.malformed
    if args.kafka:
        from amlwatch.config import load_config

        kafka = load_config(args.config).kafka
        result = ingest.ingest_alert_topic(engine, kafka, group=args.group, topic=args.topic,
                                           idle_timeout=args.idle_timeout)
        print(result.line(f"alerts kafka:{args.topic or kafka.alerts_topic}"), file=sys.stderr)
        bad += result.malformed
    if bad:
        print(f"{bad} malformed records kept: amlwatch console ingest-errors", file=sys.stderr)
    return 0


def cmd_ingest_errors(args) -> int:
    import orjson
    from sqlalchemy import select

    from amlwatch.console.schema import ingest_errors

    with _engine(args).connect() as conn:
        for row in conn.execute(select(ingest_errors).order_by(ingest_errors.c.id).limit(args.limit)):
            print(orjson.dumps({"kind": row.kind, "source": row.source, "position": row.position, "field": row.field,
                                "reason": row.reason, "raw": row.raw.decode("utf-8", "replace")}).decode())
    return 0


def cmd_labels_export(args) -> int:
    from amlwatch.console.labels import export_labels

    with _engine(args).connect() as conn:
        labels, negatives = export_labels(conn, args.out, args.negatives)
    print(f"{labels:,} labelled trades to {args.out}"
          + (f", {negatives:,} false-positive trades to {args.negatives}" if args.negatives else ""), file=sys.stderr)
    return 0


def cmd_audit_verify(args) -> int:
    from amlwatch.console.audit import verify

    with _engine(args).connect() as conn:
        report = verify(conn)
    print(report.table())
    return 0 if report.ok else 1


def demo_console(out, *, host: str = "127.0.0.1", port: int = DEFAULT_PORT) -> None:
    """Load the demo's own alerts and events into out/console.db, make two users and serve (four-eyes needs two)."""
    from pathlib import Path

    from amlwatch.console import audit, ingest
    from amlwatch.console.auth import add_user
    from amlwatch.console.db import open_engine

    out = Path(out)
    db = out / "console.db"
    for stale in (db, db.with_name("console.db-wal"), db.with_name("console.db-shm")):
        stale.unlink(missing_ok=True)
    engine = open_engine(str(db))
    print(f"\nconsole: loading the demo's events and alerts into {db}", file=sys.stderr)
    print(ingest.ingest_event_file(engine, out / "events.jsonl.gz").line("events"), file=sys.stderr)
    print(ingest.ingest_alert_file(engine, out / "alerts.jsonl").line("alerts"), file=sys.stderr)
    accounts = {"analyst": secrets.token_urlsafe(9), "supervisor": secrets.token_urlsafe(9)}
    with engine.begin() as conn:
        for name, password in accounts.items():
            add_user(conn, name, password, name)
            audit.append(conn, "demo", "user.add", f"user:{name}", {"role": name})
    banner = "log in as " + " or ".join(f"{name} / {password}" for name, password in accounts.items())
    serve(engine, host=host, port=port, banner=banner)
