"""Reply texts shared by the rendering tests and benchmarks: a realistic reply and a mixed one."""

from __future__ import annotations

REALISTIC_UNIT = '''## Step {n}: load the settings

The loader reads `config.toml` from the platform config directory, merges the environment on top and
returns a frozen dataclass, so a bad value is reported once, with its file, line and key, instead of
surfacing later as an attribute error deep inside a provider adapter.

- parse the file with `tomllib` and keep the line numbers
- check every key against the schema and collect all the problems
- fall back to the defaults for anything missing

```python
def load_settings(path: Path) -> Settings:
    with path.open("rb") as handle:
        raw = tomllib.load(handle)
    problems = list(check(raw))
    if problems:
        raise ConfigError(problems)
    return Settings.from_mapping(raw)
```

'''


def realistic(units: int = 8) -> str:
    """A reply of repeated heading + paragraph + list + Python block (~150 tokens per unit)."""
    return "".join(REALISTIC_UNIT.format(n=n) for n in range(1, units + 1))


MIXED = '''# Mixed reply

A paragraph with **bold**, *emphasis*, `inline code`, a [link](https://example.com/a/very/long/path/that/keeps/going/and/going/on/and/on?with=query&and=more)
and a long URL: LONG_URL
Second line of the same paragraph, long enough to wrap at least once at the narrower width used here.

日本語のテキストは単語の間に空白がないので、折り返しはセル単位で行われます。これは長い行の例です。漢字とかなが混ざっています。

- first bullet that is long enough to wrap around when the terminal is narrow, with more words after it
- second bullet
  - nested bullet with its own fairly long text that wraps at the narrower of the two widths used
  - another nested bullet
- third bullet
1. an ordered item right after the bullets

1. ordered one
2. ordered two with a longer text that needs to wrap when the width is small enough for that to happen
3. ordered three
   with a continuation line
4. four
5. five
6. six
7. seven
8. eight
9. nine
10. ten, where the numbers get wider

> A quote that is long enough to wrap: quoted text, quoted text, quoted text, quoted text, quoted text.
>
> A second paragraph in the quote.

| Name | Description | Value |
|------|-------------|------:|
| alpha | a short cell | 1 |
| beta | a much longer description cell that will have to wrap inside its column when the table is too wide | 22 |
| gamma | 日本語のセル | 333 |

---

Text after the rule. See [the docs](https://docs.python.org/3/library/) or [this](javascript:alert(1)) for more,
and [https://example.com](https://example.com) whose text names its target.

```python
def very_long_function_name_for_testing(argument_one: int, argument_two: str, argument_three: float) -> dict[str, int]:
	return {"tab": 1}
```

```
plain code block with a line that is definitely longer than the narrower width and has to be wrapped by Syntax word wrap
```

### A heading that is long enough to wrap at the narrow width, because headings wrap like paragraphs do

Escapes: \\x1b[31m red? [/] [@click=app.quit]quit[/] and a tab\there.

Final words.
'''.replace("LONG_URL", "https://example.com/" + "a" * 111 + "/end")
