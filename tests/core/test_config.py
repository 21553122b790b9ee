import pytest

from chatapp.config import ConfigError, Paths, load_settings
from chatapp.domain import ProviderKind


@pytest.fixture
def paths(tmp_path):
    return Paths(config_dir=tmp_path / "config", data_dir=tmp_path / "data", cache_dir=tmp_path / "cache")


def write_config(paths, text):
    paths.config_dir.mkdir(parents=True, exist_ok=True)
    paths.config_file.write_text(text)


def test_no_file_openai_key_only(paths):
    settings = load_settings({"OPENAI_API_KEY": "sk-x", "OPENAI_BASE_URL": "http://127.0.0.1:9/v1"}, paths)
    assert settings.default_provider == "openai"
    spec = settings.provider()
    assert spec.kind == "openai" and spec.base_url == "http://127.0.0.1:9/v1"
    assert "anthropic" not in settings.providers


def test_no_file_anthropic_key_only(paths):
    settings = load_settings({"ANTHROPIC_API_KEY": "k", "ANTHROPIC_BASE_URL": "http://127.0.0.1:9"}, paths)
    assert settings.default_provider == "anthropic"
    assert settings.provider().base_url == "http://127.0.0.1:9"


def test_key_provider_beats_embedded(paths):
    settings = load_settings({"ANTHROPIC_API_KEY": "k"}, paths)
    assert settings.default_provider == "anthropic"


def test_provider_blocks_and_default(paths):
    write_config(paths, """
default_provider = "ollama"
fallback = ["ollama", "openai"]

[providers.ollama]
kind = "openai"
base_url = "http://localhost:11434/v1"
model = "llama3.2"
context_window = 8192

[providers.openai]
kind = "openai"
model = "gpt-4o"
""")
    settings = load_settings({}, paths)
    assert settings.default_provider == "ollama"
    assert settings.fallback == ("ollama", "openai")
    assert settings.provider("ollama").context_window == 8192
    assert settings.provider("ollama").needs_key is False
    assert settings.provider("openai").needs_key is True
    assert settings.provider("ollama").kind is ProviderKind.OPENAI  # parsed once, typed from here on
    assert settings.chain() == ("ollama", "openai")
    assert settings.chain("openai") == ("openai", "ollama")


def test_the_provider_settings_are_read_off_the_dataclass(paths):
    """Every ProviderSpec field but its name can be set, with the type the dataclass declares."""
    write_config(paths, '[providers.x]\nkind = "openai"\nmodel = "m"\nrpm = 60\ntpm = 1.5\nthreads = 2\n'
                        'price_input = 0\nfirst_token_timeout = 5\n')
    spec = load_settings({}, paths).provider("x")
    assert (spec.rpm, spec.tpm, spec.threads, spec.price_input, spec.first_token_timeout) == (60, 1.5, 2, 0, 5)
    write_config(paths, '[providers.x]\nkind = "openai"\nmodel = "m"\nthreads = 1.5\n')
    with pytest.raises(ConfigError, match=r"providers\.x\.threads: must be a int"):
        load_settings({}, paths)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("default_provider = \n", ":1: "),
        ("[providers.x]\nkind = \"openai\"\nmodel = 3\n", ":3: providers.x.model: must be a str"),
        ("[providers.x]\nkind = \"bogus\"\n", ":2: providers.x.kind: must be one of openai, anthropic, llamacpp"),
        ("colour = 1\n", ":1: colour: unknown setting"),
        ("[providers.x]\nkind = \"openai\"\nmodel = \"m\"\ncontext_window = -5\n", ":4: providers.x.context_window"),
        ("default_provider = \"nope\"\n", ":1: default_provider: no provider named 'nope'"),
    ],
)
def test_malformed_file_names_file_line_and_problem(paths, text, expected):
    write_config(paths, text)
    with pytest.raises(ConfigError) as info:
        load_settings({}, paths)
    message = str(info.value)
    assert str(paths.config_file) in message
    assert expected in message
    assert "\n" not in message


def test_cli_malformed_config_exits_2_without_traceback(tmp_path, monkeypatch, capsys):
    from chatapp.cli import main

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    (tmp_path / "cfg" / "chatapp").mkdir(parents=True)
    (tmp_path / "cfg" / "chatapp" / "config.toml").write_text("[providers.x\n")
    assert main(["ls"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "config.toml:1:" in err and "Traceback" not in err
