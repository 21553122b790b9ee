"""`chatapp import`: a chatapp JSON export or ChatGPT's conversations.json, all or nothing."""

from __future__ import annotations

import argparse
from pathlib import Path

from chatapp.cli.common import EXIT_OK, UsageError
from chatapp.config import Settings
from chatapp.domain import ImportFileError


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    importer = commands.add_parser("import", help="import conversations (chatapp JSON or ChatGPT conversations.json)")
    importer.add_argument("file", type=Path, help="the file to import")
    importer.set_defaults(run=run)


def run(settings: Settings, args: argparse.Namespace) -> int:
    from chatapp.service import ChatService

    service = ChatService.open(settings)
    try:
        report = service.import_file(args.file)
    except ImportFileError as exc:
        raise UsageError(f"import: {exc}") from None
    finally:
        service.close()
    line = f"imported {report.imported} conversation{'s' if report.imported != 1 else ''} ({report.messages} messages)"
    if report.already_there:
        line += f"; {report.already_there} already there"
    if report.skipped.total:
        s = report.skipped
        line += (f"; skipped {s.total} messages ({s.system} system, {s.tool} tool, {s.hidden} hidden, "
                 f"{s.empty} without text)")
    print(line)
    return EXIT_OK
