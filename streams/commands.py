"""CLI of the streaming service: worker, produce, alerts tail, topics create."""

from __future__ import annotations

import sys

from amlwatch.config import load_config


def add_commands(subparsers) -> None:
    p = subparsers.add_parser("worker", help="run a Kafka streaming worker (start several to share the work)")
    p.add_argument("--config", help="TOML file ([kafka] section and detector thresholds)")
    p.add_argument("--data-dir", help="worker's local data directory (default: [service] data_dir / worker id)")
    p.add_argument("--web-port", type=int, help="Faust web port (default: no web server)")
    p.add_argument("--metrics-port", type=int, help="/metrics, /healthz, /readyz (0: off; default [service] metrics_port)")
    p.add_argument("--no-model", action="store_true", help="rules only, no anomaly model")
    p.add_argument("--loglevel", help="default [service] log_level")
    p.add_argument("--archive", help="record archive root; this worker writes under ROOT/WORKER_ID "
                                      "(default: $AMLWATCH_ARCHIVE_DIR, else [archive] dir)")
    p.add_argument("--no-archive", action="store_true", help="keep no records (tests and benchmarks only)")
    p.set_defaults(handler=cmd_worker)

    p = subparsers.add_parser("produce", help="produce a recorded JSONL(.gz) stream into the input topics")
    p.add_argument("path")
    p.add_argument("--rate", type=float, help="events per second (default: as fast as possible)")
    p.add_argument("--bootstrap", help="Kafka bootstrap servers (default: config / AMLWATCH_KAFKA_BOOTSTRAP)")
    p.add_argument("--config")
    p.add_argument("--heartbeat", action="store_true",
                   help="end with a far-future account event that ends every trade's grace (finite streams)")
    p.set_defaults(handler=cmd_produce)

    p = subparsers.add_parser("alerts", help="alerts on the Kafka alerts topic")
    actions = p.add_subparsers(metavar="ACTION")
    q = actions.add_parser("tail", help="print alerts as they arrive")
    q.add_argument("--typology")
    q.add_argument("--severity", choices=["low", "medium", "high", "critical"])
    q.add_argument("--since", help="event time (ISO-8601 with offset); reads the topic from the beginning")
    q.add_argument("--json", action="store_true", help="print the alert JSON")
    q.add_argument("--from-beginning", action="store_true")
    q.add_argument("--max", type=int, help="stop after this many alerts")
    q.add_argument("--idle-timeout", type=float, help="stop after this many seconds without an alert")
    q.add_argument("--bootstrap")
    q.add_argument("--config")
    q.set_defaults(handler=cmd_alerts_tail)
    p.set_defaults(handler=lambda args: p.print_help() or 2)

    p = subparsers.add_parser("topics", help="amlwatch's Kafka topics")
    actions = p.add_subparsers(metavar="ACTION")
    q = actions.add_parser("create", help="create the input, alert, dead-letter and work topics")
    q.add_argument("--bootstrap")
    q.add_argument("--config")
    q.set_defaults(handler=cmd_topics_create)
    p.set_defaults(handler=lambda args: p.print_help() or 2)


def _kafka(args):
    import dataclasses

    config = load_config(getattr(args, "config", None))
    if getattr(args, "bootstrap", None):
        config = dataclasses.replace(config, kafka=dataclasses.replace(config.kafka, bootstrap=args.bootstrap))
    return config


def cmd_worker(args) -> int:
    from amlwatch.records.replay import resolve_archive_dir

    from .worker import run_worker

    config = load_config(args.config)
    service = config.service
    return run_worker(config, data_dir=args.data_dir, web_port=args.web_port,
                      metrics_port=service.metrics_port if args.metrics_port is None else args.metrics_port,
                      with_model=not args.no_model, loglevel=args.loglevel or service.log_level,
                      archive_dir=None if args.no_archive else resolve_archive_dir(args.archive, config))


def cmd_produce(args) -> int:
    from amlwatch.sources import read_lines

    from .produce import produce

    config = _kafka(args)
    counts = produce((raw for _, raw in read_lines(args.path)), config.kafka, rate=args.rate,
                     heartbeat=args.heartbeat)
    print("produced " + ", ".join(f"{topic} {n:,}" for topic, n in sorted(counts.items())), file=sys.stderr)
    return 0


def cmd_alerts_tail(args) -> int:
    from .tail import tail

    config = _kafka(args)
    tail(config.kafka, typology=args.typology, severity=args.severity, since=args.since, as_json=args.json,
         from_beginning=args.from_beginning, max_alerts=args.max, idle_timeout=args.idle_timeout)
    return 0


def cmd_topics_create(args) -> int:
    from .topics import all_topics, create_topics, report_topics

    config = _kafka(args)
    created = create_topics(config.kafka, extra=report_topics(config))
    for topic in all_topics(config.kafka, report_topics(config)):
        print(f"{topic}: {'created' if topic in created else 'exists'}")
    return 0
