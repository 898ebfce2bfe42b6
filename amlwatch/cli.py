"""The `amlwatch` command: thin handlers over the library, one per subcommand."""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

from amlwatch.config import load_config
from amlwatch.engine import build_monitor
from amlwatch.errors import AmlwatchError

__all__ = ["build_monitor", "build_parser", "main"]


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "handler"):
        parser.print_help()
        return 2
    try:
        return args.handler(args) or 0
    except AmlwatchError as error:
        print(f"amlwatch: error: {error.describe()}", file=sys.stderr)
        return 2
    except (FileNotFoundError, ValueError) as error:   # a missing input file, a bad --since
        print(f"amlwatch: error: {_one_line(error)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="amlwatch", description=__doc__)
    commands = parser.add_subparsers(metavar="COMMAND")

    p = commands.add_parser("replay", help="run a recorded stream through the detectors")
    p.add_argument("path", nargs="?", default="-", help="JSON Lines file (.jsonl or .jsonl.gz), '-' for stdin")
    p.add_argument("--archive", help="replay the input events kept in this record archive instead of a file")
    p.add_argument("--record", help="keep every input event and alert of this replay in this record archive")
    p.add_argument("--config", help="TOML file with detector thresholds")
    p.add_argument("--alerts-out", default="-", help="alerts JSONL file (default stdout)")
    p.add_argument("--dead-letter", help="JSONL file for bad records and their reasons")
    p.add_argument("--since", help="first event time to report (ISO-8601 with offset)")
    p.add_argument("--until", help="last event time to read (ISO-8601 with offset)")
    p.add_argument("--no-model", action="store_true", help="rules only, no anomaly model")
    p.add_argument("--reports", help="JSONL file for large-value reports and risk ratings (docs/REPORTING.md)")
    p.add_argument("--workers", type=int, default=1,
                   help="processes to replay with, collections split between them; the same alerts as one "
                        "(default 1; not with stdin, --record or --reports)")
    p.set_defaults(handler=cmd_replay)

    p = commands.add_parser("simulate", help="write a labelled synthetic marketplace stream")
    p.add_argument("out_dir")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--days", type=int, default=30)
    p.add_argument("--accounts", type=int, default=2000)
    p.set_defaults(handler=cmd_simulate)

    p = commands.add_parser("evaluate", help="recall and precision of alerts against labels")
    p.add_argument("labels")
    p.add_argument("alerts")
    p.add_argument("--negatives", help="hard-negative trades (default: negatives.jsonl beside the labels)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(handler=cmd_evaluate)

    p = commands.add_parser("volume", help="alert volume per detector on a recorded stream (no labels needed)")
    p.add_argument("events", help="recorded stream (JSON Lines, plain or .gz)")
    p.add_argument("--alerts", help="alerts JSONL of that stream (default: replay it now)")
    p.add_argument("--labels", help="labels file: adds the share of unlabelled (honest) trades alerted")
    p.add_argument("--config", help="TOML file with detector thresholds (for the replay)")
    p.add_argument("--no-model", action="store_true", help="rules only, no anomaly model (for the replay)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(handler=cmd_volume)

    p = commands.add_parser("demo", help="simulate, replay and evaluate in one go (no Kafka)")
    p.add_argument("--out", help="directory to keep the stream and alerts (default: a temporary one)")
    p.add_argument("--seed", type=int, default=11)
    p.add_argument("--days", type=int, default=30)
    p.add_argument("--accounts", type=int, default=2000)
    p.add_argument("--console", action="store_true",
                   help="then open the analyst console on the demo's alerts (prints a user to log in as)")
    p.add_argument("--console-port", type=int, default=8700)
    p.set_defaults(handler=cmd_demo)

    p = commands.add_parser("train", help="fit the IsolationForest anomaly model on recorded streams")
    p.add_argument("events", nargs="+", help="recorded streams (JSON Lines, plain or .gz)")
    p.add_argument("--out", required=True, help="model directory to write")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--contamination", type=float, default=0.001,
                   help="share of training trades above the alert threshold (default 0.001)")
    p.add_argument("--exclude-labels", action="append", default=[],
                   help="labels file whose trades are left out of training (repeatable)")
    p.add_argument("--config", help="TOML file (the monitor's windows shape the features' state)")
    p.set_defaults(handler=cmd_train)

    p = commands.add_parser("model", help="inspect an anomaly model")
    model_commands = p.add_subparsers(metavar="ACTION")
    q = model_commands.add_parser("report", help="feature drift of a stream against the training data")
    q.add_argument("events", nargs="+")
    q.add_argument("--model", help="model directory (default: the shipped model)")
    q.set_defaults(handler=cmd_model_report)

    from amlwatch.records.commands import add_commands as add_records_commands

    add_records_commands(commands)
    from amlwatch.streams.commands import add_commands as add_stream_commands

    add_stream_commands(commands)
    from amlwatch.ops.commands import add_commands as add_ops_commands

    add_ops_commands(commands)
    from amlwatch.reporting.commands import add_commands as add_reporting_commands

    add_reporting_commands(commands)
    from amlwatch.console.commands import add_commands as add_console_commands

    add_console_commands(commands)
    return parser


def run_replay(path, config, alerts_out, dead_letter_path=None, since=None, until=None, with_model=True,
               archive=None, record=None, reports=None, workers=1):
    """Replay a file (or, with `archive`, a record archive); with `record`, archive as it goes; with
    `workers` > 1, across that many processes (amlwatch/shardedreplay.py)."""
    from amlwatch.deadletter import DeadLetterFile
    from amlwatch.records.replay import archive_replay, iter_archived_events
    from amlwatch.replay import AlertWriter, parse_bound, progress_bar, replay
    from amlwatch.sources import read_lines

    source = f"archive:{archive}" if archive else str(path)
    sharded = workers > 1
    if sharded:
        _refuse_workers(workers, path, archive, record, reports)
    open_records = (lambda: iter_archived_events(archive)) if archive else (lambda: read_lines(path))
    monitor = None if sharded else build_monitor(config, with_model=with_model)
    with ExitStack() as stack:
        out = sys.stdout.buffer if str(alerts_out) == "-" else stack.enter_context(open(alerts_out, "wb"))
        dead = stack.enter_context(open(dead_letter_path, "wb")) if dead_letter_path else None
        dead_letters = DeadLetterFile(dead)
        bounds = {"since": parse_bound(since, "--since"), "until": parse_bound(until, "--until")}
        if reports:
            from amlwatch.reporting.commands import with_reports

            monitor, record = with_reports(stack, monitor, config, reports, record, since=bounds["since"])
        update, close = progress_bar()
        try:
            if sharded:
                from amlwatch.shardedreplay import sharded_replay

                summary = sharded_replay(open_records, config, AlertWriter(out), dead_letters, shards=workers,
                                         with_model=with_model, source=source, progress=update, **bounds)
            elif record:
                summary = archive_replay(open_records(), monitor, record, out, dead_letters, source=source,
                                         progress=update, commit_every=config.archive.commit_every, **bounds)
            else:
                summary = replay(open_records(), monitor, AlertWriter(out), dead_letters, source=source,
                                 progress=update, **bounds)
        finally:
            close()
    if dead_letters.count and not dead_letter_path:
        print(f"amlwatch: {dead_letters.count} bad records (use --dead-letter FILE to keep them): "
              f"{dict(dead_letters.by_field)}", file=sys.stderr)
    return summary


def _refuse_workers(workers, path, archive, record, reports) -> None:
    from amlwatch.shardedreplay import ReplayWorkersError

    for given, name in ((record, "--record"), (reports, "--reports"), (not archive and str(path) == "-", "stdin")):
        if given:
            raise ReplayWorkersError(f"--workers {workers} cannot replay with {name}: each worker reads the "
                                     "stream itself and a report or an archive is written in one pass")


def cmd_replay(args) -> int:
    config = load_config(args.config)
    summary = run_replay(args.path, config, args.alerts_out, args.dead_letter, args.since, args.until,
                         with_model=not args.no_model, archive=args.archive, record=args.record,
                         reports=args.reports, workers=args.workers)
    print(summary.table(), file=sys.stderr)
    return 0


def cmd_simulate(args) -> int:
    from amlwatch.simulator import simulate

    started = time.perf_counter()
    summary = simulate(Path(args.out_dir), seed=args.seed, days=args.days, accounts=args.accounts)
    print(_format_simulation(summary, time.perf_counter() - started), file=sys.stderr)
    return 0


def _format_simulation(summary: dict, seconds: float) -> str:
    lines = [f"simulated in {seconds:.1f} s"]
    for key, value in summary.items():
        if isinstance(value, dict):
            lines.append(f"{key}: " + ", ".join(f"{k} {v:,}" for k, v in sorted(value.items())))
        else:
            lines.append(f"{key}: {value:,}" if isinstance(value, int) else f"{key}: {value}")
    return "\n".join(lines)


def cmd_evaluate(args) -> int:
    from amlwatch.evaluation import evaluate, load_alerts, load_labels, load_negatives

    negatives_path = Path(args.negatives) if args.negatives else Path(args.labels).with_name("negatives.jsonl")
    negatives = load_negatives(negatives_path) if negatives_path.exists() else None
    result = evaluate(load_labels(args.labels), load_alerts(args.alerts), negatives)
    if args.json:
        import orjson

        sys.stdout.buffer.write(orjson.dumps(result.to_dict(), option=orjson.OPT_INDENT_2) + b"\n")
    else:
        print(result.table())
    return 0


def cmd_volume(args) -> int:
    from amlwatch.evaluation import alert_volume, count_trades, load_alerts, load_labels

    with ExitStack() as stack:
        alerts_path = args.alerts
        if alerts_path is None:
            alerts_path = Path(stack.enter_context(tempfile.TemporaryDirectory())) / "alerts.jsonl"
            summary = run_replay(args.events, load_config(args.config), alerts_path, with_model=not args.no_model)
            print(summary.table(), file=sys.stderr)
        volume = alert_volume(count_trades(args.events), load_alerts(alerts_path),
                              load_labels(args.labels) if args.labels else None)
    if args.json:
        import orjson

        sys.stdout.buffer.write(orjson.dumps(volume.to_dict(), option=orjson.OPT_INDENT_2) + b"\n")
    else:
        print(volume.table())
    return 0


def cmd_train(args) -> int:
    from amlwatch.evaluation import load_labels
    from amlwatch.models.training import train
    from amlwatch.replay import progress_bar

    excluded: set[str] = set()
    for path in args.exclude_labels:
        excluded |= load_labels(path).keys()
    update, close = progress_bar()
    try:
        model = train(args.events, args.out, seed=args.seed, contamination=args.contamination,
                      exclude_trade_ids=excluded, config=load_config(args.config), progress=update)
    finally:
        close()
    meta = model.metadata
    print(f"model {model.model_id} written to {args.out}\n"
          f"trained on {meta['training_rows']:,} trades ({len(excluded):,} labelled trades left out), "
          f"threshold {meta['threshold']:.4f} at contamination {meta['contamination']}", file=sys.stderr)
    return 0


def cmd_model_report(args) -> int:
    from amlwatch.models.artifact import DEFAULT_MODEL_DIR, load_model
    from amlwatch.models.drift import population_stability
    from amlwatch.models.training import collect_features

    model = load_model(args.model or DEFAULT_MODEL_DIR)
    X, _, _ = collect_features(args.events)
    report = population_stability(model, X)
    print(f"model {model.model_id}, trained on {model.metadata['training_rows']:,} trades")
    print(report.table())
    return 0


def cmd_demo(args) -> int:
    from amlwatch.evaluation import alert_volume, count_trades, evaluate, load_alerts, load_labels, load_negatives
    from amlwatch.simulator import simulate

    with ExitStack() as stack:
        out = Path(args.out) if args.out else Path(stack.enter_context(tempfile.TemporaryDirectory()))
        out.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        print(f"1/3 simulating {args.days} days of a marketplace with {args.accounts:,} accounts "
              f"(seed {args.seed}) into {out}", file=sys.stderr)
        summary = simulate(out, seed=args.seed, days=args.days, accounts=args.accounts)
        print(_format_simulation(summary, time.perf_counter() - started), file=sys.stderr)
        print("\n2/3 replaying the stream through every detector", file=sys.stderr)
        config = load_config(None)
        replay_summary = run_replay(out / "events.jsonl.gz", config, out / "alerts.jsonl",
                                    out / "dead-letter.jsonl")
        print(replay_summary.table(), file=sys.stderr)
        print("\n3/3 alerts against the simulator's labels", file=sys.stderr)
        labels, alerts = load_labels(out / "labels.jsonl"), load_alerts(out / "alerts.jsonl")
        result = evaluate(labels, alerts, load_negatives(out / "negatives.jsonl"))
        print(result.table())
        print("\nalert volume per detector, and the share of honest (unlabelled) trades each alerts on")
        print(alert_volume(count_trades(out / "events.jsonl.gz"), alerts, labels).table())
        print(f"\ndone in {time.perf_counter() - started:.1f} s; alerts in {out / 'alerts.jsonl'}"
              + ("" if args.out else " (temporary: pass --out DIR to keep them)"), file=sys.stderr)
        if args.console:
            from amlwatch.console.commands import demo_console

            demo_console(out, port=args.console_port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
