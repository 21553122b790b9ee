"""`chatapp export`: conversations as chatapp's JSON (schema in the README) or Markdown."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from chatapp.cli.common import EXIT_OK, UsageError, resolve_conversation, say_notices
from chatapp.config import Settings


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    export = commands.add_parser("export", help="export conversations as JSON (for import) or Markdown")
    which = export.add_mutually_exclusive_group(required=True)
    which.add_argument("id", nargs="?", help="conversation id (a unique prefix will do)")
    which.add_argument("--all", action="store_true", help="every conversation (JSON only)")
    export.add_argument("--format", choices=("json", "md"), default="json", help="json (default) or md")
    export.add_argument("-o", "--output", type=Path, metavar="FILE", help="write to FILE (private: mode 0600)")
    export.epilog = "The JSON schema is described in the README; `chatapp import` reads it back."
    export.set_defaults(run=run)


def run(settings: Settings, args: argparse.Namespace) -> int:
    from chatapp.service import ChatService

    if args.all and args.format == "md":
        raise UsageError("export: --all is JSON only (Markdown is one conversation at a time)")
    service = ChatService.open(settings, to_read=True)
    say_notices(service)
    try:
        ids = None if args.all else [resolve_conversation(service, args.id, "export").id]
        if args.output is not None:
            try:
                service.export_to_file(ids, args.format, args.output)
            except OSError as exc:
                raise UsageError(f"export: cannot write {args.output}: {exc.strerror or exc}") from None
        elif args.format == "md":
            assert ids is not None
            sys.stdout.write(service.export_markdown(ids[0]))
        else:
            for chunk in service.export_json(ids):
                sys.stdout.write(chunk)
    finally:
        service.close()
    return EXIT_OK

