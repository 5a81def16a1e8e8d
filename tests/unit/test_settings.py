"""Settings: TRAKR_* variables, the TOML file, precedence and readable errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from trakr.errors import ConfigError
from trakr.settings import Settings


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "trakr.toml"
    path.write_text(text)
    return path


def test_defaults() -> None:
    settings = Settings.load()
    assert settings.postgres_dsn == "postgresql://postgres@127.0.0.1:5432/trakr"
    assert settings.redis_url == "redis://127.0.0.1:6379/0"
    assert settings.namespace == "trakr"
    assert settings.key("scrapes") == "trakr:scrapes"
    assert settings.key("jet", "rutgers", "members") == "trakr:jet:rutgers:members"


def test_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRAKR_NAMESPACE", "ci")
    monkeypatch.setenv("TRAKR_JET_TIMEOUT_SECONDS", "2.5")
    monkeypatch.setenv("TRAKR_HERMES_DRY_RUN", "true")
    settings = Settings.load()
    assert settings.key("scrapes") == "ci:scrapes"
    assert settings.jet_timeout_seconds == 2.5
    assert settings.hermes_dry_run is True


def test_toml_file(tmp_path: Path) -> None:
    path = write(
        tmp_path, 'namespace = "fromfile"\njet_timeout_seconds = 7\ncollapse = "rutgers=240s"\n'
    )
    settings = Settings.load(path)
    assert settings.namespace == "fromfile"
    assert settings.jet_timeout_seconds == 7.0
    assert settings.collapse == "rutgers=240s"
    assert Settings.load(str(path)).namespace == "fromfile"


def test_precedence_overrides_then_env_then_toml_then_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(
        tmp_path, 'namespace = "toml"\nredis_url = "redis://toml:1/0"\nspike_port = 1111\n'
    )
    monkeypatch.setenv("TRAKR_NAMESPACE", "env")
    monkeypatch.setenv("TRAKR_REDIS_URL", "redis://env:2/0")
    settings = Settings.load(path, namespace="flag", log_level=None)
    assert settings.namespace == "flag"  # override beats env and file
    assert settings.redis_url == "redis://env:2/0"  # env beats file
    assert settings.spike_port == 1111  # file beats default
    assert settings.log_level == "INFO"  # a None override falls through to the default
    assert settings.jet_timeout_seconds == 30.0


def test_the_file_does_not_leak_into_later_loads(tmp_path: Path) -> None:
    Settings.load(write(tmp_path, 'namespace = "once"\n'))
    assert Settings.load().namespace == "trakr"


def test_bad_toml_is_a_readable_error(tmp_path: Path) -> None:
    path = write(tmp_path, "namespace = \n")
    with pytest.raises(ConfigError, match=r"not valid TOML"):
        Settings.load(path)


def test_missing_file_is_a_readable_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"cannot read config file .*missing\.toml"):
        Settings.load(tmp_path / "missing.toml")


def test_bad_value_names_the_setting(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TRAKR_JET_TIMEOUT_SECONDS", "soon")
    with pytest.raises(ConfigError, match=r"jet_timeout_seconds"):
        Settings.load()
    monkeypatch.delenv("TRAKR_JET_TIMEOUT_SECONDS")
    with pytest.raises(ConfigError, match=r"spike_port"):
        Settings.load(write(tmp_path, "spike_port = 70000\n"))
    with pytest.raises(ConfigError, match=r"namespace"):
        Settings.load(namespace="has space")
    with pytest.raises(ConfigError, match=r"log_level"):
        Settings.load(log_level="LOUD")


def test_unknown_key_in_file_is_rejected(tmp_path: Path) -> None:
    # A typo in a config file must not be silently ignored.
    with pytest.raises(ConfigError, match=r"jet_timeout_secs"):
        Settings.load(write(tmp_path, "jet_timeout_secs = 3\n"))


def test_config_error_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRAKR_SPIKE_PORT", "-1")
    with pytest.raises(ConfigError) as caught:
        Settings.load()
    assert "\n" not in str(caught.value)


def test_settings_are_frozen() -> None:
    settings = Settings.load()
    with pytest.raises(Exception, match="frozen"):
        settings.namespace = "other"  # type: ignore[misc]
