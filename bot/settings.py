"""Process settings from the environment (secrets and addresses; policy lives in YAML)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings"]


class Settings(BaseSettings):
    """The environment table of DESIGN.md. ``--db``/``--config`` override the first two."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore", frozen=True)

    db: str = Field("./nightshift.db", validation_alias="NIGHTSHIFT_DB")
    config: str = Field("./nightshift.yml", validation_alias="NIGHTSHIFT_CONFIG")
    host: str = Field("127.0.0.1", validation_alias="NIGHTSHIFT_HOST")
    port: int = Field(3000, ge=0, le=65535, validation_alias="NIGHTSHIFT_PORT")
    slack_bot_token: str | None = Field(None, validation_alias="SLACK_BOT_TOKEN")
    slack_app_token: str | None = Field(None, validation_alias="SLACK_APP_TOKEN")
    slack_signing_secret: str | None = Field(None, validation_alias="SLACK_SIGNING_SECRET")
    slack_api_url: str | None = Field(None, validation_alias="SLACK_API_URL")

    @property
    def transport(self) -> Literal["socket", "http", "shell"]:
        """Bot + app token: Socket Mode; bot token + signing secret: HTTP; else the shell."""
        if self.slack_bot_token and self.slack_app_token:
            return "socket"
        if self.slack_bot_token and self.slack_signing_secret:
            return "http"
        return "shell"
