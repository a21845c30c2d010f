"""The ``shelfwise`` command line. Its contract (commands, flags, --json output) is relied on by
scripts: extend it, never change what exists.

Every command takes ``--db URL`` and ``--json``; errors print one line to stderr and exit 1.
Commands live in :mod:`engine.commands`, one module per area.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from importlib.metadata import entry_points

from engine.commands import Cli, batch, evaluation, report, retraining, server, serving, setup, training
from engine.config import load_settings
from engine.errors import ShelfwiseError

#: The engine's own command modules; layers above add theirs through ``shelfwise.commands``.
COMMAND_MODULES = (server, setup, training, serving, batch, evaluation, report, retraining)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="shelfwise", description="Self-hosted product recommendations.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    cli = Cli(parser)
    for module in COMMAND_MODULES:
        module.register(cli)
    for plugin in entry_points(group="shelfwise.commands"):
        plugin.load()(cli)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        settings = load_settings(database_url=getattr(args, "db", None))
        result = args.handler(args, settings)
    except ShelfwiseError as exc:
        print(f"shelfwise: error: {exc.message}", file=sys.stderr)
        return 1
    except json.JSONDecodeError as exc:
        print(f"shelfwise: error: not valid JSON: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
