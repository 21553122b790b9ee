"""`chatapp templates`: list the prompt templates, or show one with its per-version results."""

from __future__ import annotations

import argparse

from chatapp.cli.common import EXIT_OK, UsageError, error, say_notices
from chatapp.config import Settings
from chatapp.textsafe import visible


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    templates = commands.add_parser("templates", help="list prompt templates, or show one")
    templates.add_argument("action", nargs="?", choices=["list", "show"], default="list")
    templates.add_argument("name", nargs="?", help="template name for `show` (NAME or NAME@VERSION)")
    templates.set_defaults(run=run)


def run(settings: Settings, args: argparse.Namespace) -> int:
    from chatapp.service import ChatService, TemplateError, describe

    service = ChatService.open(settings, to_read=True)
    say_notices(service)
    try:
        library = service.templates
        if args.action == "show":
            if not args.name:
                raise UsageError("templates show: name a template")
            try:
                template = library.get(args.name)
            except TemplateError as exc:
                raise UsageError(f"template: {exc}") from None
            versions = [t.version for t in library.versions(template.name)]
            print(visible(describe(template, versions=versions, stats=service.template_results(template.name))))
        else:
            for template in library.list():
                print(visible(f"{template.ref:24} {template.role.value:6}  {template.description}"))
        for problem in library.problems:
            error(f"skipped {problem.path}: {problem.message}")
    finally:
        service.close()
    return EXIT_OK
