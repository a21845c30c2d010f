"""The ``shelfwise`` commands, one module per area, each with a ``register(cli)`` function.

A module adds its sub-commands to the shared parser; layers above the engine (the webhook
intake) add theirs through the ``shelfwise.commands`` entry point group, so ``engine`` never
imports them. Every command takes ``--db`` and ``--json`` through :attr:`Cli.common`.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

from engine.config import Settings
from engine.storage import Store

Handler = Callable[[argparse.Namespace, Settings], "int | None"]


class Cli:
    """The parser under construction, handed to each command module's ``register``."""

    def __init__(self, parser: argparse.ArgumentParser) -> None:
        self.parser = parser
        self.common = argparse.ArgumentParser(add_help=False)
        self.common.add_argument(
            "--db", metavar="URL", help="database URL (default: $SHELFWISE_DATABASE_URL, else sqlite:///shelfwise.db)"
        )
        self.common.add_argument("--json", action="store_true", help="print machine-readable JSON")
        self.sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
        self._groups: dict[str, argparse._SubParsersAction] = {}

    def command(self, name: str, handler: Handler, help: str) -> argparse.ArgumentParser:
        """A top-level command: ``shelfwise NAME ...``."""
        p = self.sub.add_parser(name, parents=[self.common], help=help)
        p.set_defaults(handler=handler)
        return p

    def action(
        self, group: str, name: str, handler: Handler, help: str, group_help: str = ""
    ) -> argparse.ArgumentParser:
        """A command under a noun: ``shelfwise GROUP NAME ...`` (several modules may share a group)."""
        if group not in self._groups:
            p = self.sub.add_parser(group, help=group_help or f"{group} commands")
            self._groups[group] = p.add_subparsers(dest="action", required=True, metavar="ACTION")
        p = self._groups[group].add_parser(name, parents=[self.common], help=help)
        p.set_defaults(handler=handler)
        return p


def arn(settings: Settings, resource: str) -> str:
    from engine.arns import make_arn

    return make_arn(settings, resource)


def emit(args: argparse.Namespace, payload: dict[str, Any], text: str) -> None:
    """Print ``payload`` as JSON with --json, else the human sentence."""
    print(json.dumps(payload, indent=2, default=str) if args.json else text)


def open_store(settings: Settings) -> Store:
    return Store(settings.database_url)
