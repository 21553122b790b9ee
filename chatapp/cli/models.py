"""`chatapp models`: the local GGUF models, and `pull` / `rm` for models from the Hugging Face Hub."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import TYPE_CHECKING

from chatapp.cli.common import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, error
from chatapp.config import Settings
from chatapp.pulled_index import ALIASES, PullError
from chatapp.textsafe import visible

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

    from chatapp.service import ChatService, LocalModel

PULL_HINT = "pull one: chatapp models pull qwen2.5-1.5b (or any owner/repo with GGUF files)"


def _size(n: int | None) -> str:
    if n is None:
        return "-"
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"


def _aliases_epilog() -> str:
    lines = ["aliases (instruction-tuned, Q4_K_M, run on a laptop CPU):"]
    lines += [f"  {a.name:<13} {a.size_mb:>5} MB  {a.context // 1024:>3}k ctx  {a.description}"
              for a in ALIASES]
    return "\n".join(lines)


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    models = commands.add_parser("models", help="local GGUF models: list, pull from the Hugging Face Hub, remove")
    models.set_defaults(run=run_list, json=False)
    actions = models.add_subparsers(dest="models_command", metavar="ACTION")
    listing = actions.add_parser("ls", help="every local model with size, quantisation, context and template")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    listing.set_defaults(run=run_list)
    pull = actions.add_parser("pull", help="download a GGUF model from the Hugging Face Hub",
                              epilog=_aliases_epilog(), formatter_class=argparse.RawDescriptionHelpFormatter)
    pull.add_argument("ref", metavar="REF", help="an alias, owner/repo, or owner/repo:file.gguf")
    pull.add_argument("--file", help="the .gguf file to take from the repo (default: best quantisation that fits)")
    pull.add_argument("--save", action="store_true",
                      help='also write a [providers.NAME] kind = "llamacpp" block to the config file')
    pull.set_defaults(run=run_pull)
    remove = actions.add_parser("rm", help="delete a pulled model (asks first)")
    remove.add_argument("name", metavar="NAME", help="the pulled model's name, as `chatapp models` shows it")
    remove.add_argument("--yes", "-y", action="store_true", help="do not ask")
    remove.set_defaults(run=run_remove)


def _open(settings: Settings) -> ChatService:
    from chatapp.service import ChatService

    return ChatService.open(settings)


def run_list(settings: Settings, args: argparse.Namespace) -> int:
    service = _open(settings)
    try:
        models = service.local_models()
        default = service.default_provider
    finally:
        service.close()
    if args.json:
        print(json.dumps([_as_json(m) for m in models], indent=1))
        return EXIT_OK
    if not models:
        print("no local models.")
    else:
        print(f"  {'NAME':<26} {'SOURCE':<9} {'SIZE':>9} {'QUANT':<7} {'CONTEXT':>8} {'TEMPLATE':<9} PROVIDER")
        for model in models:
            mark = "*" if default in model.providers else " "
            template = {True: "chat", False: "none", None: "?"}[model.chat_template]
            context = f"{model.context_length:,}" if model.context_length else "-"
            line = (f"{mark} {model.name:<26} {model.source:<9} {_size(model.size):>9} {model.quantization or '-':<7} "
                    f"{context:>8} {template:<9} {', '.join(model.providers) or '-'}")
            print(visible(line))
            if model.problem:
                print(visible(f"    {model.path}: {model.problem}"))
    if not any(m.source == "pulled" for m in models):
        print(PULL_HINT)
    return EXIT_OK


def _as_json(model: LocalModel) -> dict[str, object]:
    return {"name": model.name, "source": model.source, "path": str(model.path), "size": model.size,
            "quantization": model.quantization, "context_length": model.context_length,
            "chat_template": model.chat_template, "providers": list(model.providers), "problem": model.problem}


def run_pull(settings: Settings, args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    service = _open(settings)
    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
               TimeRemainingColumn())
    started = time.monotonic()
    try:
        with Progress(*columns, console=Console(stderr=True), transient=False) as bar:
            task = bar.add_task(f"pulling {args.ref}", total=None)
            model = service.pull_model(args.ref, file=args.file, save=args.save,
                                       progress=lambda done, total: _advance(bar, task, done, total))
    except PullError as exc:
        error(str(exc))
        return EXIT_FAILED
    except KeyboardInterrupt:
        error("interrupted: the partial download is kept; run the same command again to resume")
        return EXIT_INTERRUPTED
    finally:
        service.close()
    kind = "instruct (chat template)" if model.has_chat_template else "base model (no chat template)"
    context = f"{model.context_length:,}" if model.context_length else "unknown"
    print(visible(f"pulled {model.repo}:{model.filename} as {model.name}: {_size(model.size)}, "
                  f"{model.quantization or '?'}, context {context}, {kind} ({time.monotonic() - started:.1f} s)"))
    if args.save:
        print(visible(f"saved as [providers.{model.name}] in {settings.source or settings.paths.config_file}"))
    print(visible(f"use it: chatapp ask --provider {model.name} \"...\" (offered by the model picker too)"))
    return EXIT_OK


def _advance(bar: Progress, task: TaskID, done: int, total: int | None) -> None:
    bar.update(task, completed=done, total=total)


def run_remove(settings: Settings, args: argparse.Namespace) -> int:
    service = _open(settings)
    try:
        model = service.pulled_model(args.name)
    except PullError as exc:
        service.close()
        error(str(exc))
        return EXIT_USAGE
    if not args.yes:
        if not sys.stdin.isatty():
            error(f"not removing {args.name} without confirmation: add --yes")
            return EXIT_USAGE
        answer = input(visible(f"Remove {model.name} ({_size(model.size)}, {model.path})? [y/N] "))
        if answer.strip().lower() not in ("y", "yes"):
            print("kept.")
            service.close()
            return EXIT_OK
    try:
        service.remove_pulled_model(args.name)
        print(visible(f"removed {model.name} ({_size(model.size)})"))
        config_note = service.forget_saved_model(model)
    except PullError as exc:
        error(str(exc))
        return EXIT_FAILED
    finally:
        service.close()
    if config_note:
        print(visible(config_note))
    return EXIT_OK
