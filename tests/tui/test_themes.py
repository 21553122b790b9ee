"""Theme files: a broken one is reported and skipped; its name and path are shown as text, never markup."""

from textual.widgets._toast import Toast
from tui_helpers import wait_for

from chatapp.config import load_settings
from chatapp.service import ChatService
from chatapp.tui.app import ChatApp


def _toasts(app) -> list[str]:
    return [toast.render().plain for screen in app.screen_stack for toast in screen.query(Toast)]


async def test_a_broken_theme_file_name_is_shown_literally(isolated_env):
    isolated_env.themes_dir.mkdir(parents=True)
    (isolated_env.themes_dir / "[b]loud [@click=app.quit]x.toml").write_text('name = "loud"\n')
    service = ChatService.open(load_settings())
    async with ChatApp(service, None).run_test(notifications=True) as pilot:
        await wait_for(lambda: _toasts(pilot.app), pilot)
        [message] = _toasts(pilot.app)
        assert "[b]loud [@click=app.quit]x.toml" in message and "needs at least" in message
        assert pilot.app.is_running


async def test_an_unknown_theme_name_from_the_config_is_shown_literally(isolated_env):
    isolated_env.config_dir.mkdir(parents=True)
    isolated_env.config_file.write_text('theme = "[b]bold[/b]"\n')
    service = ChatService.open(load_settings())
    async with ChatApp(service, None).run_test(notifications=True) as pilot:
        await wait_for(lambda: _toasts(pilot.app), pilot)
        assert "'[b]bold[/b]' not found" in _toasts(pilot.app)[0]
