"""`amlwatch config show`: the effective configuration (defaults, TOML, environment) and its hash."""

from __future__ import annotations

import sys

import orjson

from amlwatch.config import OPERATIONAL_SECTIONS, Config, load_config


def add_commands(subparsers) -> None:
    """Add the `config` command (with its `show` action) to argparse subparsers."""
    p = subparsers.add_parser("config", help="the effective configuration and its hash",
                              description="Configuration: defaults, then the TOML file (--config, else "
                                          "$AMLWATCH_CONFIG), then AMLWATCH_<SECTION>__<KEY> variables.")
    p.set_defaults(handler=lambda args: p.print_help() or 2)
    actions = p.add_subparsers(metavar="ACTION")
    q = actions.add_parser("show", help="print the effective configuration and its hash; exit 2 if invalid")
    q.add_argument("--config", help="TOML file (default: $AMLWATCH_CONFIG, else none)")
    q.add_argument("--json", action="store_true", help='print {"hash": ..., "config": {...}}')
    q.set_defaults(handler=cmd_config_show)


def cmd_config_show(args) -> int:
    config = load_config(args.config)
    if args.json:
        sys.stdout.buffer.write(orjson.dumps({"hash": config.hash, "config": config.to_dict()},
                                             option=orjson.OPT_INDENT_2) + b"\n")
    else:
        sys.stdout.write(to_toml(config))
    return 0


def to_toml(config: Config) -> str:
    """The configuration as a TOML file that `load_config` reads back to an equal `Config`.

    The header names the hash; unset optional values (TOML has no null) are
    shown as comments so every key is listed.
    """
    lines = [f"# amlwatch effective configuration, hash {config.hash}",
             f"# sections {', '.join(sorted(OPERATIONAL_SECTIONS))} are operational: not in the hash"]
    for section, values in config.to_dict().items():
        lines.append(f"\n[{section}]")
        for key, value in values.items():
            if value is None:
                lines.append(f"# {key} is unset")
            else:
                lines.append(f"{key} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return orjson.dumps(value).decode()
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{orjson.dumps(k).decode()} = {_toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"no TOML spelling for {value!r}")
