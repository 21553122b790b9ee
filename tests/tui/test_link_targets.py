"""Markdown links show where they go before anyone clicks (issue 13, case 16); only http/https links are
links at all."""

from rich.console import Console

from chatapp.tui.widgets.markdown_blocks import Block
from chatapp.tui.widgets.markdown_render import render_block


def shown(markdown: str) -> tuple[str, str]:
    """(the text on screen, the raw output with escape codes)."""
    plain = Console(width=100, color_system=None, record=True)
    plain.print(render_block(Block("markdown", markdown), "monokai"))
    styled = Console(width=100, force_terminal=True, color_system="truecolor", record=True)
    styled.print(render_block(Block("markdown", markdown), "monokai"))
    return plain.export_text(), styled.export_text(styles=True)


def test_link_shows_its_host_next_to_its_text():
    text, raw = shown("Please [click me](https://evil.example.net/login?x=1) now.")
    assert "click me" in text and "evil.example.net" in text
    assert "\x1b]8;" in raw  # still a terminal hyperlink


def test_a_link_whose_text_is_its_address_is_not_repeated():
    text, _ = shown("[https://example.com/a](https://example.com/a)")
    assert text.count("example.com") == 1


def test_other_schemes_are_not_links_but_their_target_shows():
    for target in ("javascript:alert(1)", "file:///etc/passwd", "data:text/html,hi"):
        text, raw = shown(f"[harmless]({target})")
        assert "harmless" in text and target.split(":")[0] in text
        assert "\x1b]8;" not in raw, target
