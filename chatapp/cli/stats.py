"""`chatapp stats`: per-provider requests, retries, latency, tokens and cost across runs."""

from __future__ import annotations

import argparse
import json

from chatapp.cli.common import EXIT_OK, say_notices
from chatapp.config import Settings


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    stats = commands.add_parser("stats", help="per-provider requests, retries, latency, tokens and cost")
    stats.add_argument("--json", action="store_true", help="print the figures as JSON")
    stats.set_defaults(run=run)


def run(settings: Settings, args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from chatapp.service import ChatService
    from chatapp.service.stats_table import as_text

    service = ChatService.open(settings, to_read=True)
    say_notices(service)
    try:
        snapshot = service.stats()
    finally:
        service.close()
    if args.json:
        print(json.dumps([asdict(p) for p in snapshot.providers], indent=2))
    else:
        print(as_text(snapshot))
    return EXIT_OK
