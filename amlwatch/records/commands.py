"""`amlwatch records ...` and `amlwatch backtest`: `add_commands(subparsers)` adds both to the CLI."""

from __future__ import annotations

import functools
import sys
from contextlib import ExitStack

from amlwatch.config import load_config


def add_commands(subparsers) -> None:
    """Add the `records` command (with its actions) and the `backtest` command to argparse subparsers."""
    p = subparsers.add_parser("records", help="the record archive: verify, purge, legal holds, export",
                              description="The record archive (docs/RECORDS.md). The directory is --dir, else "
                                          "$AMLWATCH_ARCHIVE_DIR, else the config's archive.dir (./records).")
    p.set_defaults(handler=_usage(p))
    actions = p.add_subparsers(metavar="ACTION")

    q = actions.add_parser("verify", help="check every chain, manifest and sealed file; exit 1 on any damage")
    q.add_argument("path", nargs="?", metavar="DIR", help="archive directory")
    _dir_args(q)
    q.add_argument("--json", action="store_true", help="print the report as JSON")
    q.set_defaults(handler=_guard(cmd_verify))

    q = actions.add_parser("purge", help="remove sealed segments past retention, except under hold")
    _dir_args(q)
    q.add_argument("--dry-run", action="store_true", help="show what would be removed; change nothing")
    q.add_argument("--now", help="purge as of this time (ISO-8601 with offset; default: now)")
    q.add_argument("--json", action="store_true")
    q.set_defaults(handler=_guard(cmd_purge))

    q = actions.add_parser("hold", help="legal holds: add, release, list")
    q.set_defaults(handler=_usage(q))
    holds = q.add_subparsers(metavar="ACTION")
    r = holds.add_parser("add", help="hold an account's records, or a case's accounts and/or period")
    r.add_argument("--account", action="append", default=[], help="account id (repeatable with --case)")
    r.add_argument("--case", help="case id: the hold covers --account(s) and/or --since/--until")
    r.add_argument("--since", help="case period start (ISO-8601 with offset)")
    r.add_argument("--until", help="case period end (ISO-8601 with offset)")
    r.add_argument("--reason", required=True)
    r.add_argument("--by", help="who places it (default: the OS user)")
    _dir_args(r)
    r.set_defaults(handler=_guard(cmd_hold_add))
    r = holds.add_parser("release", help="release a hold")
    r.add_argument("hold_id")
    r.add_argument("--reason")
    r.add_argument("--by")
    _dir_args(r)
    r.set_defaults(handler=_guard(cmd_hold_release))
    r = holds.add_parser("list", help="active holds (--all: released ones too)")
    r.add_argument("--all", action="store_true")
    _dir_args(r)
    r.set_defaults(handler=_guard(cmd_hold_list))

    q = actions.add_parser("export", help="every archived event and alert touching an account")
    q.add_argument("--account", required=True)
    q.add_argument("--since", help="first event time (ISO-8601 with offset)")
    q.add_argument("--until", help="last event time (ISO-8601 with offset)")
    q.add_argument("--format", choices=("jsonl", "csv"), default="jsonl")
    q.add_argument("--out", default="-", help="output file (default stdout)")
    _dir_args(q)
    q.set_defaults(handler=_guard(cmd_export))

    q = actions.add_parser("seal", help="seal every open segment (e.g. before a backup)")
    _dir_args(q)
    q.set_defaults(handler=_guard(cmd_seal))

    q = actions.add_parser("status", help="streams, segments, records and heads")
    _dir_args(q)
    q.set_defaults(handler=_guard(cmd_status))

    p = subparsers.add_parser("backtest", help="two configs over the same records: alerts appeared, vanished, changed")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--archive", metavar="DIR", help="replay the input events of a record archive")
    src.add_argument("--events", metavar="FILE", help="replay a recorded stream (JSON Lines, plain or .gz)")
    p.add_argument("--config", action="append", required=True, metavar="TOML",
                   help="twice: configuration A, then B")
    p.add_argument("--labels", help="labels JSONL (trade_id, typology): confusion matrix per typology")
    p.add_argument("--since", help="first event time to report (earlier events warm the detectors)")
    p.add_argument("--until", help="last event time to read")
    p.add_argument("--show", type=int, default=20, help="alerts listed per category (default 20)")
    p.add_argument("--json", action="store_true", help="print the full diff as JSON")
    p.add_argument("--workers", type=int, default=1,
                   help="replay each config across this many processes (as amlwatch replay --workers)")
    p.set_defaults(handler=_guard(cmd_backtest))


def _dir_args(parser) -> None:
    parser.add_argument("--dir", help="archive directory")
    parser.add_argument("--config", help="TOML configuration ([archive] dir, [retention] days)")


def _usage(parser):
    def show(args) -> int:
        parser.print_help(sys.stderr)
        return 2

    return show


def _guard(handler):
    """Archive errors (a busy stream, a damaged segment) as one line and exit 2, like the CLI's other errors."""
    from .archive import ArchiveError

    @functools.wraps(handler)
    def run(args) -> int:
        try:
            return handler(args)
        except ArchiveError as error:
            print(f"amlwatch: error: {error}", file=sys.stderr)
            return 2

    return run


def _config(args):
    return load_config(getattr(args, "config", None))


def _root(args, config=None):
    from .replay import resolve_archive_dir

    explicit = getattr(args, "path", None) or getattr(args, "dir", None)
    if explicit is None and config is None and getattr(args, "config", None):
        config = _config(args)
    return resolve_archive_dir(explicit, config)


def _existing_root(args, config=None):
    root = _root(args, config)
    if not root.is_dir():
        raise FileNotFoundError(f"no record archive at {root}")
    return root


def cmd_verify(args) -> int:
    from .verify import verify_archive

    report = verify_archive(_root(args))
    if args.json:
        import orjson

        sys.stdout.buffer.write(orjson.dumps(report.to_dict(), option=orjson.OPT_INDENT_2) + b"\n")
    else:
        print(report.text())
    return 0 if report.ok and not report.empty else 1


def cmd_purge(args) -> int:
    from .retention import parse_now, purge

    config = _config(args)
    plan = purge(_existing_root(args, config), config.retention, now=parse_now(args.now), dry_run=args.dry_run)
    if args.json:
        import orjson

        sys.stdout.buffer.write(orjson.dumps(plan.to_dict(), option=orjson.OPT_INDENT_2) + b"\n")
    else:
        print(plan.text())
    return 0


def cmd_hold_add(args) -> int:
    from .retention import add_hold

    hold = add_hold(_root(args), reason=args.reason, accounts=args.account, case=args.case, since=args.since,
                    until=args.until, by=args.by)
    print(hold.hold_id)
    print(f"placed: {hold.describe()}", file=sys.stderr)
    return 0


def cmd_hold_release(args) -> int:
    from .retention import release_hold

    hold = release_hold(_existing_root(args), args.hold_id, reason=args.reason, by=args.by)
    print(f"released: {hold.describe()}", file=sys.stderr)
    return 0


def cmd_hold_list(args) -> int:
    from .retention import list_holds

    holds = list_holds(_existing_root(args), include_released=args.all)
    for hold in holds:
        print(hold.describe())
    if not holds:
        print("no holds" if args.all else "no active holds", file=sys.stderr)
    return 0


def cmd_export(args) -> int:
    from amlwatch.replay import parse_bound

    from .export import export_account

    root = _existing_root(args)
    with ExitStack() as stack:
        out = sys.stdout.buffer if args.out == "-" else stack.enter_context(open(args.out, "wb"))
        count = export_account(root, args.account, out, since=parse_bound(args.since, "--since"),
                               until=parse_bound(args.until, "--until"), fmt=args.format)
    print(f"{count:,} records touching {args.account}", file=sys.stderr)
    return 0


def cmd_seal(args) -> int:
    from .archive import RecordArchive

    with RecordArchive(_existing_root(args)) as archive:
        sealed = archive.seal_all_open()
    for path in sealed:
        print(path)
    print(f"sealed {len(sealed)} segments", file=sys.stderr)
    return 0


def cmd_status(args) -> int:
    from .archive import ArchiveReader

    reader = ArchiveReader(_existing_root(args))
    print(f"{'stream':<14}{'sealed':>8}{'open':>6}{'records':>14}{'first day':>12}{'last day':>12}  head")
    for sid in reader.streams():
        segments = reader.segments(sid)
        sealed = [s for s in segments if s.sealed]
        opened = [s for s in segments if s.has_open and not s.sealed]
        records = sum(s.manifest()["records"] for s in sealed)
        head_seq = max((s.manifest()["last_seq"] for s in sealed), default=0)
        for seg in opened:
            count = sum(1 for _ in seg.lines())
            records += count
            head_seq = max(head_seq, seg.first_seq + count - 1)
        days = sorted(s.day for s in segments)
        print(f"{sid:<14}{len(sealed):>8}{len(opened):>6}{records:>14,}{days[0] if days else '-':>12}"
              f"{days[-1] if days else '-':>12}  seq {head_seq:,}")
    return 0


def cmd_backtest(args) -> int:
    from amlwatch.evaluation import load_labels
    from amlwatch.replay import parse_bound
    from amlwatch.sources import read_lines

    from .backtest import backtest
    from .replay import iter_archived_events

    if len(args.config) != 2:
        raise ValueError("backtest needs exactly two --config files (A, then B)")
    config_a, config_b = load_config(args.config[0]), load_config(args.config[1])
    if args.archive:
        from pathlib import Path

        if not Path(args.archive).is_dir():
            raise FileNotFoundError(f"no record archive at {args.archive}")
        records, source = (lambda: iter_archived_events(args.archive)), args.archive
    else:
        records, source = (lambda: read_lines(args.events)), args.events
    labels = load_labels(args.labels) if args.labels else None
    result = backtest(records, config_a, config_b, names=(args.config[0], args.config[1]), labels=labels,
                      since=parse_bound(args.since, "--since"), until=parse_bound(args.until, "--until"),
                      source=source, workers=args.workers)
    if args.json:
        import orjson

        sys.stdout.buffer.write(orjson.dumps(result.to_dict(), option=orjson.OPT_INDENT_2) + b"\n")
    else:
        print(result.text(show=args.show))
    return 0
