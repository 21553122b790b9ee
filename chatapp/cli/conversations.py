"""`chatapp open`, `show`, `rm` and `rename`: one saved conversation at a time."""

from __future__ import annotations

import argparse
import sys

from chatapp.cli.common import EXIT_OK, UsageError, resolve_conversation, say_notices
from chatapp.config import Settings
from chatapp.textsafe import visible


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    opener = commands.add_parser("open", help="open a saved conversation in the TUI")
    opener.add_argument("id", help="conversation id (a unique prefix will do)")
    opener.set_defaults(run=run_open)
    show = commands.add_parser("show", help="print a conversation (its current branch) to stdout")
    show.add_argument("id", help="conversation id (a unique prefix will do)")
    show.add_argument("--json", action="store_true", help="the JSON export format instead of Markdown")
    show.add_argument("--raw", action="store_true", help="write the text unfiltered (control characters kept)")
    show.set_defaults(run=run_show)
    rm = commands.add_parser("rm", help="delete a conversation (its text is erased from the database file)")
    rm.add_argument("id", help="conversation id (a unique prefix will do)")
    rm.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
    rm.set_defaults(run=run_rm)
    rename = commands.add_parser("rename", help="give a conversation a title (generated titles never replace it)")
    rename.add_argument("id", help="conversation id (a unique prefix will do)")
    rename.add_argument("title", nargs="+", help="the new title")
    rename.set_defaults(run=run_rename)


def run_open(settings: Settings, args: argparse.Namespace) -> int:
    from chatapp.service import ChatService
    from chatapp.tui.app import run

    service = ChatService.open(settings)
    try:
        conversation_id = resolve_conversation(service, args.id, "open").id
    finally:
        service.close()
    return run(settings, provider=args.provider, model=args.model, conversation_id=conversation_id)


def run_show(settings: Settings, args: argparse.Namespace) -> int:
    from chatapp.service import ChatService

    service = ChatService.open(settings, to_read=True)
    say_notices(service)
    try:
        conversation = resolve_conversation(service, args.id, "show")
        if args.json:
            text = "".join(service.export_json([conversation.id]))
        else:
            text = service.export_markdown(conversation.id)
    finally:
        service.close()
    sys.stdout.write(text if args.raw else visible(text))
    return EXIT_OK


def run_rm(settings: Settings, args: argparse.Namespace) -> int:
    from chatapp.service import ChatService

    service = ChatService.open(settings)
    try:
        conversation = resolve_conversation(service, args.id, "rm")
        if not args.yes:
            if not sys.stdin.isatty():
                raise UsageError("rm: add --yes to delete without a terminal to confirm in")
            title = visible(conversation.display_title)
            answer = input(f"Delete “{title}” ({conversation.message_count} messages)? [y/N] ")
            if answer.strip().lower() not in ("y", "yes"):
                print("kept")
                return EXIT_OK
        service.delete_conversation(conversation.id)
    finally:
        service.close()
    print(f"deleted {conversation.id}")
    return EXIT_OK


def run_rename(settings: Settings, args: argparse.Namespace) -> int:
    from chatapp.service import ChatService

    title = " ".join(" ".join(args.title).split())
    if not title:
        raise UsageError("rename: the title is empty")
    service = ChatService.open(settings)
    try:
        conversation = resolve_conversation(service, args.id, "rename")
        service.rename_conversation(conversation.id, title)
    finally:
        service.close()
    print(f"{conversation.id}  {visible(title)}")
    return EXIT_OK
