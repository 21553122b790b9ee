"""Config values that would misroute or hang a turn are refused at load, naming file, line and key (issue 13,
case 9); a CHATAPP_CONFIG that names no file is said (case 12)."""

import pytest

from chatapp.config import ConfigError, Paths, load_settings


@pytest.fixture
def paths(tmp_path):
    return Paths(config_dir=tmp_path / "config", data_dir=tmp_path / "data", cache_dir=tmp_path / "cache")


def load(paths, text):
    paths.config_dir.mkdir(parents=True, exist_ok=True)
    paths.config_file.write_text(text)
    return load_settings({}, paths)


PROVIDER = '[providers.p]\nkind = "openai"\nmodel = "m"\n'


@pytest.mark.parametrize("url", ["http:///v1", "not a url", "ftp://example.com/v1", "localhost:11434/v1"])
def test_base_url_needs_http_scheme_and_host(paths, url):
    with pytest.raises(ConfigError) as caught:
        load(paths, f'{PROVIDER}base_url = "{url}"\n')
    assert str(caught.value).startswith(f"{paths.config_file}:4: providers.p.base_url: must be an http")


@pytest.mark.parametrize(("line", "key"), [
    ("timeout = nan", "providers.p.timeout"),
    ("timeout = inf", "providers.p.timeout"),
    ("first_token_timeout = 1e300", "providers.p.first_token_timeout"),
])
def test_provider_numbers_must_be_finite_and_in_range(paths, line, key):
    with pytest.raises(ConfigError, match=rf":4: {key}: must be a number from"):
        load(paths, f"{PROVIDER}{line}\n")


@pytest.mark.parametrize("line", ["interactive_deadline = inf", "base_delay = 1e300", "max_attempts = nan",
                                  "max_delay = -1"])
def test_retry_numbers_must_be_finite_and_in_range(paths, line):
    key = line.split()[0]
    with pytest.raises(ConfigError, match=rf":2: retry.{key}: must be a number from"):
        load(paths, f"[retry]\n{line}\n")


def test_environment_base_url_is_checked_too(paths):
    with pytest.raises(ConfigError, match="OPENAI_BASE_URL: must be an http"):
        load_settings({"OPENAI_API_KEY": "k", "OPENAI_BASE_URL": "ftp://x"}, paths)


def test_good_values_still_load(paths):
    settings = load(paths, f'{PROVIDER}base_url = "https://api.example.com/v1"\ntimeout = 30\n'
                           "[retry]\ninteractive_deadline = 45\nbase_delay = 0.5\nmax_attempts = 6\n")
    assert settings.provider("p").base_url == "https://api.example.com/v1"
    assert settings.retry.max_attempts == 6


def test_chatapp_config_naming_a_missing_file_is_an_error(paths):
    with pytest.raises(ConfigError, match=r"/no/such.toml: not found \(named by CHATAPP_CONFIG\)"):
        load_settings({"CHATAPP_CONFIG": "/no/such.toml"}, paths)
