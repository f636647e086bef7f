"""Process settings from the environment (secrets and addresses; policy lives in YAML)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator
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
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        "info", validation_alias="NIGHTSHIFT_LOG_LEVEL"
    )

    @field_validator("log_level", mode="before")
    @classmethod
    def _a_level(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    def host_problem(self) -> str | None:
        """What is wrong with the listen address (``nightshift run`` asks), or None."""
        if not self.host.strip():  # aiohttp would listen on every interface
            return "NIGHTSHIFT_HOST='': is empty: give an address (unset it for 127.0.0.1)"
        return None

    @field_validator("db", "config")
    @classmethod
    def _a_path(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("is empty: give a file path (unset it for the default)")
        if value.strip() == ":memory:":
            raise ValueError("must be a file: an in-memory database would lose everything")
        return value

    @field_validator("slack_api_url")
    @classmethod
    def _an_api_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():  # set but empty (`${SLACK_API_URL:-}`): Slack's
            return None
        scheme, sep, rest = value.strip().partition("://")
        if not sep or scheme.lower() not in ("http", "https") or not rest.strip("/"):
            raise ValueError(
                "is not an http(s) URL: write it as https://slack.com/api/ (or unset it:"
                " that is the default)"
            )
        if "@" in rest.partition("/")[0]:  # user:password@host: slack_sdk sends a token
            raise ValueError(
                "carries a user or password: Slack's Web API takes the bot token alone"
                " (for a proxy, set HTTPS_PROXY; or unset it: that is the default)"
            )
        return value.strip()

    def slack_problem(self) -> str | None:
        """What is wrong with the Slack variables, or None (a full pair, or none at all).

        A partial set would silently mean shell mode: nobody would be paged.
        """
        bot, app, secret = self.slack_bot_token, self.slack_app_token, self.slack_signing_secret
        if not (bot or app or secret):
            return None
        if bot and not bot.startswith("xoxb-"):
            return "SLACK_BOT_TOKEN must be the bot token (xoxb-...), not " + _kind(bot)
        if app and not app.startswith("xapp-"):
            return "SLACK_APP_TOKEN must be an app-level token (xapp-...), not " + _kind(app)
        if not bot:
            given = "SLACK_APP_TOKEN" if app else "SLACK_SIGNING_SECRET"
            return f"{given} is set but SLACK_BOT_TOKEN (xoxb-...) is not: set it, or unset {given}"
        if not (app or secret):
            return (
                "SLACK_BOT_TOKEN is set but neither SLACK_APP_TOKEN (Socket Mode) nor"
                " SLACK_SIGNING_SECRET (HTTP mode) is: set one, or unset it for shell mode"
            )
        return None

    @property
    def transport(self) -> Literal["socket", "http", "shell"]:
        """Bot + app token: Socket Mode; bot token + signing secret: HTTP; else the shell."""
        if self.slack_bot_token and self.slack_app_token:
            return "socket"
        if self.slack_bot_token and self.slack_signing_secret:
            return "http"
        return "shell"


def _kind(token: str) -> str:
    """What a Slack token looks like, by its prefix (never the token itself)."""
    prefix = token.split("-", 1)[0] + "-" if "-" in token else "a string without a prefix"
    return f"a {prefix}... token" if prefix.endswith("-") else prefix
