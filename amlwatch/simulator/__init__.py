"""A labelled synthetic digital-collectible marketplace, for evaluation, demos and benchmarks.

Four parts, run in order by `simulate`:
- `world`: people, collections and their floor paths, tokens, the trade ledger;
  reads the monitor's configuration for every threshold a scenario must sit
  on the right side of;
- `honest`: drops and a secondary market shaped like a real one (rarity
  premiums around a floor, rising and falling markets, dealers, sweepers,
  market makers, buy-backs);
- `scenarios`: the labelled laundering typologies and the hard negatives;
- `writer`: the sorted event stream, labels.jsonl and negatives.jsonl.

One seed gives the same bytes (no wall clock, no `hash()`); every typology
has at least 40 labelled trades at the default size (2,000 accounts, 30 days),
and short streams (from 4 days, 100 accounts) keep every scenario.
"""

from __future__ import annotations

from pathlib import Path

from amlwatch.config import Config

from . import honest, scenarios
from .world import World
from .writer import write

__all__ = ["simulate", "World"]


def simulate(out_dir: Path, *, seed: int = 7, days: int = 30, accounts: int = 2000,
             config: Config | None = None) -> dict:
    """Write events.jsonl.gz, labels.jsonl and negatives.jsonl into `out_dir`; return a summary.

    `config` is the monitor configuration the scenarios are placed against (default: the defaults)."""
    if days < 4:
        raise ValueError(f"simulate needs at least 4 days, got {days}")
    if accounts < 100:
        raise ValueError(f"simulate needs at least 100 accounts, got {accounts}")
    world = World(seed, days, accounts, config)
    world.build_population()
    world.build_collections()
    honest.run(world)
    scenarios.run(world)
    return write(world, Path(out_dir))
