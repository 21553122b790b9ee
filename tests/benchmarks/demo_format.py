"""How the packaged base model answers 20 everyday prompts, in the old and the new prompt format.

    python tests/benchmarks/demo_format.py [--formats gemma,transcript] [--max-tokens 256] [--threads N] [--show]

For each format it starts the packaged Gemma 3 270M through `LlamaCppProvider` (what a user gets:
the same sampling settings, stop sequences and output limit) and sends each prompt of
`demo_prompts.txt` as a new conversation. Per format it prints, out of 20:

- ended by itself: the reply finished with reason "stop" before the token limit;
- loops: the reply repeats some 5-token sequence 3 times or more (words, or single characters for
  scripts written without spaces), the "下次下次…" failure;
- in the prompt's language: a rough detector (below) agrees with the prompt's tag.

Formats: `gemma` is the model's Gemma chat turns (chatapp's template, the old default for this file),
`transcript` the plain-text few-shot transcript with stop sequences (the default for a GGUF without
a chat template). Sampling is llama.cpp's default (temperature 0.8) as a user gets it, so figures move
a little between runs. `--show` prints every reply.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from chatapp.config import Paths, ProviderSpec
from chatapp.domain import ChatMessage, ChatRequest, Finish, Role, TextDelta
from chatapp.providers.llamacpp import LlamaCppProvider
from chatapp.providers.llamacpp_launch import gemma_template

PROMPTS = Path(__file__).with_name("demo_prompts.txt")
MODEL = "gemma-3-270m"

# A few of the commonest words per language: enough to tell which of these four a reply is in.
# Hand-written because the benchmark only has to separate en/fr/es/de from each other and from CJK,
# which a dozen function words do reliably for replies of a sentence or more.
STOPWORDS = {
    "en": {"the", "and", "is", "are", "of", "to", "a", "in", "it", "you", "that", "for", "with", "on", "your"},
    "fr": {"le", "la", "les", "et", "est", "de", "des", "un", "une", "du", "en", "que", "pour", "il", "vous"},
    "es": {"el", "la", "los", "las", "y", "es", "de", "un", "una", "que", "en", "por", "para", "puedes", "con"},
    "de": {"der", "die", "das", "und", "ist", "ein", "eine", "zu", "man", "nicht", "mit", "sie", "es", "auf"},
}
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]")


@dataclass(frozen=True)
class Reply:
    language: str
    prompt: str
    text: str
    finish: str | None


def load_prompts() -> list[tuple[str, str]]:
    rows = []
    for line in PROMPTS.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            language, prompt = line.split("\t", 1)
            rows.append((language, prompt))
    return rows


def tokens(text: str) -> list[str]:
    """Words, with each CJK character a token of its own (those scripts put no spaces between words)."""
    return re.findall(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]|[^\W\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]+",
                      text.lower())


def has_loop(text: str, n: int = 5, times: int = 3) -> bool:
    words = tokens(text)
    grams = Counter(tuple(words[i:i + n]) for i in range(len(words) - n + 1))
    return bool(grams) and max(grams.values()) >= times


def language_of(text: str) -> str:
    words = tokens(text)
    if not words:
        return "none"
    if sum(1 for w in words if _CJK.match(w)) > len(words) / 3:
        return "cjk"
    scores = {lang: sum(w in vocabulary for w in words) for lang, vocabulary in STOPWORDS.items()}
    best = max(scores, key=lambda lang: scores[lang])
    return best if scores[best] else "unknown"


async def run_format(name: str, paths: Paths, prompts: list[tuple[str, str]], max_tokens: int,
                     show: bool, threads: int | None) -> list[Reply]:
    template = gemma_template() if name == "gemma" else None
    spec = ProviderSpec(name="embedded", kind="llamacpp", model=MODEL, context_window=8192,
                        chat_template=template, threads=threads)
    provider = LlamaCppProvider(spec, paths)
    replies = []
    try:
        for language, prompt in prompts:
            request = ChatRequest(model=MODEL, messages=(ChatMessage(Role.USER, prompt),), max_tokens=max_tokens)
            parts: list[str] = []
            finish: str | None = None
            async for event in provider.stream(request):
                if isinstance(event, TextDelta):
                    parts.append(event.text)
                elif isinstance(event, Finish):
                    finish = event.reason
            replies.append(Reply(language, prompt, "".join(parts), finish))
            if show:
                reply = replies[-1]
                flag = " LOOP" if has_loop(reply.text) else ""
                print(f"--- [{name}] {reply.prompt} (finish={reply.finish}, "
                      f"lang={language_of(reply.text)}{flag})\n{reply.text.strip()}\n", flush=True)
    finally:
        await provider.aclose()
    return replies


def summarize(name: str, replies: list[Reply]) -> str:
    ended = sum(r.finish == "stop" for r in replies)
    loops = sum(has_loop(r.text) for r in replies)
    same_language = sum(language_of(r.text) == r.language for r in replies)
    words = sorted(len(tokens(r.text)) for r in replies)
    return (f"{name:<11} ended by itself {ended:>2}/{len(replies)}   loops {loops:>2}/{len(replies)}   "
            f"in the prompt's language {same_language:>2}/{len(replies)}   median words {words[len(words) // 2]}")


async def main(formats: list[str], max_tokens: int, show: bool, threads: int | None) -> None:
    prompts = load_prompts()
    lines = []
    with tempfile.TemporaryDirectory() as tmp:
        paths = Paths(Path(tmp) / "config", Path(tmp) / "data", Path(tmp) / "cache")
        for name in formats:
            replies = await run_format(name, paths, prompts, max_tokens, show, threads)
            lines.append(summarize(name, replies))
            print(lines[-1], flush=True)
    print(f"\n{len(prompts)} prompts, at most {max_tokens} tokens each:")
    print("\n".join(lines))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--formats", default="gemma,transcript")
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--show", action="store_true")
    parser.add_argument("--threads", type=int, help="llama.cpp threads (1 is faster on a crowded machine)")
    args = parser.parse_args()
    asyncio.run(main(args.formats.split(","), args.max_tokens, args.show, args.threads))
    sys.exit(0)
