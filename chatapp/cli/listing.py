"""`chatapp ls`: the saved conversations, newest first."""

from __future__ import annotations

import argparse
import json
import time

from chatapp.cli.common import EXIT_OK, say_notices
from chatapp.config import Settings
from chatapp.domain import SearchHit
from chatapp.textsafe import visible


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    ls = commands.add_parser("ls", help="list saved conversations")
    ls.add_argument("--json", action="store_true", help="print a JSON array")
    ls.add_argument("-n", "--limit", type=int, default=None, help="at most N conversations")
    ls.add_argument("-s", "--search", metavar="TEXT", help="messages containing every word of TEXT, with a snippet")
    ls.set_defaults(run=run)


def run(settings: Settings, args: argparse.Namespace) -> int:
    from chatapp.service import ChatService

    service = ChatService.open(settings, to_read=True)
    say_notices(service)
    try:
        if args.search is not None:
            return _print_hits(service.search(args.search, limit=args.limit or 50), as_json=args.json)
        items = service.conversations(limit=args.limit)
    finally:
        service.close()
    if args.json:
        print(json.dumps([
            {"id": c.id, "title": c.title, "updated": _iso(c.updated), "created": _iso(c.created),
             "messages": c.message_count, "provider": c.provider, "model": c.model,
             "title_source": c.title_source, "source": c.source_id}
            for c in items
        ], indent=2))  # ensure_ascii: bidi overrides and C1 controls leave as \u escapes
        return EXIT_OK
    if not items:
        print("no conversations yet: start one with `chatapp` or `chatapp ask \"...\"`")
        return EXIT_OK
    for c in items:
        stamp = time.strftime("%Y-%m-%d %H:%M", time.localtime(c.updated))
        print(f"{c.id}  {stamp}  {c.message_count:>4} msgs  {visible(c.display_title)}")
    return EXIT_OK


def _print_hits(hits: list[SearchHit], *, as_json: bool) -> int:
    if as_json:
        print(json.dumps([
            {"conversation": h.conversation_id, "message": h.message_id, "title": h.title, "role": h.role,
             "created": _iso(h.created), "snippet": "".join(text for text, _ in h.parts())}
            for h in hits
        ], indent=2, ensure_ascii=False))
        return EXIT_OK
    if not hits:
        print("no messages match")
    for h in hits:
        stamp = time.strftime("%Y-%m-%d %H:%M", time.localtime(h.created))
        snippet = "".join(f"*{text}*" if hit else text for text, hit in h.parts())
        print(f"{h.conversation_id}  {stamp}  {visible(h.title or '(untitled)')}\n    {h.role}: {visible(snippet)}")
    return EXIT_OK


def _iso(timestamp: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(timestamp))
