"""The one Settings class every trakr process reads (TRAKR_* env vars, optional TOML file)."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from trakr.errors import ConfigError

WireFormat = Literal["json", "protobuf"]


class Settings(BaseSettings):
    """Configuration, highest precedence first: CLI flags, TRAKR_* variables, the TOML file, defaults.

    The TOML file uses the field names as keys (`postgres_dsn = "..."`, `jet_timeout_seconds = 10`).
    """

    model_config = SettingsConfigDict(env_prefix="TRAKR_", extra="forbid", frozen=True)

    # --- shared -------------------------------------------------------------------------------
    postgres_dsn: str = "postgresql://postgres@127.0.0.1:5432/trakr"
    redis_url: str = "redis://127.0.0.1:6379/0"
    namespace: str = Field("trakr", pattern=r"^[A-Za-z0-9_.:-]+$")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    metrics_port: int | None = Field(None, ge=0, le=65535, description="None: the process default")
    shutdown_grace_seconds: float = Field(10.0, ge=0)
    backoff_max_seconds: float = Field(10.0, gt=0)

    # --- jet ----------------------------------------------------------------------------------
    jet_scraper_name: str = ""
    jet_input_format: WireFormat = "json"
    jet_output_format: WireFormat = "protobuf"
    jet_daemon_interval_seconds: float | None = Field(None, gt=0)
    jet_daemon_dir: Path | None = None
    jet_timeout_seconds: float = Field(30.0, gt=0)
    jet_max_output_bytes: int = Field(64 * 1024 * 1024, gt=0)
    jet_skip_unchanged: bool = True
    jet_stream_maxlen: int = Field(100, gt=0)  # an NB scrape is ~5 MB
    jet_heartbeat_seconds: float | None = Field(None, gt=0, description="None: interval/4, 1..5 s")

    # --- ein ----------------------------------------------------------------------------------
    ein_format: WireFormat = "protobuf"
    ein_insert_all: bool = False
    ein_max_delete_share: float = Field(0.5, ge=0, le=1)
    ein_claim_idle_seconds: float = Field(60.0, gt=0)
    ein_block_seconds: float = Field(1.0, gt=0)
    ein_dead_letter_maxlen: int = Field(1000, gt=0)

    # --- julia --------------------------------------------------------------------------------
    collapse: str = Field(
        "default=0s", description="per-university flap window: 'rutgers=240s,default=0s'"
    )
    julia_keepalive_seconds: float = Field(2.0, gt=0)
    julia_poll_seconds: float = Field(5.0, gt=0)
    julia_batch_size: int = Field(500, gt=0)
    julia_stream_maxlen: int = Field(100_000, gt=0)

    # --- hermes -------------------------------------------------------------------------------
    fcm_url: str = "https://fcm.googleapis.com"
    fcm_credentials: Path | None = None
    hermes_dry_run: bool = False
    hermes_concurrency: int = Field(64, gt=0, le=1024)
    hermes_max_attempts: int = Field(8, gt=0)
    hermes_claim_idle_seconds: float = Field(60.0, gt=0)
    hermes_block_seconds: float = Field(1.0, gt=0)

    # --- spike --------------------------------------------------------------------------------
    spike_host: str = "127.0.0.1"
    spike_port: int = Field(9876, ge=0, le=65535)
    spike_cache_ttl_seconds: float = Field(5.0, ge=0)
    spike_pool_size: int = Field(10, gt=0)

    # --- fcm emulator -------------------------------------------------------------------------
    fcm_emulator_port: int = Field(9190, ge=0, le=65535)

    # --- umbrella (trakr up / demo) -----------------------------------------------------------
    up_scrapers_file: Path | None = None

    @field_validator("fcm_credentials", mode="before")
    @classmethod
    def _fallback_credentials(cls, value: Any) -> Any:
        # The SDK's own convention is honoured when trakr's setting is absent.
        return value or os.environ.get("GOOGLE_APPLICATION_CREDENTIALS") or None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_file = settings_cls.model_config.get("toml_file")
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if toml_file:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_file))
        return tuple(sources)

    @classmethod
    def load(cls, config_file: str | Path | None = None, **overrides: Any) -> Settings:
        """Build settings from a TOML file (optional), the environment and explicit overrides.

        Overrides whose value is None are ignored, so unset CLI flags fall through to the
        environment. Raises ConfigError with a readable message on any invalid value.
        """
        target: type[Settings] = cls
        if config_file is not None:
            path = Path(config_file)
            try:
                tomllib.loads(path.read_text())
            except OSError as exc:
                raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from exc
            except tomllib.TOMLDecodeError as exc:
                raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc
            target = type(
                "FileSettings", (cls,), {"model_config": {**cls.model_config, "toml_file": path}}
            )
        try:
            return target(**{k: v for k, v in overrides.items() if v is not None})
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or 'settings'}: {err['msg']}"
                for err in exc.errors()
            )
            raise ConfigError(f"invalid configuration: {problems}") from exc

    def key(self, *parts: str) -> str:
        """A Redis key under this namespace: key("scrapes") -> "trakr:scrapes"."""
        return ":".join((self.namespace, *parts))
