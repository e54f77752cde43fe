"""Configuration: the original deployment's names keep working next to PixWave's own."""

from __future__ import annotations

import pytest

from tests.conftest import make_settings

pytestmark = pytest.mark.usefixtures("clean_env")


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "DATABASE_URL", "DB_CONNECTION", "DB_HOST", "DB_PORT", "DB_DATABASE", "DB_USERNAME",
        "DB_PASSWORD", "REDIS_URL", "REDIS_HOST", "REDIS_PORT", "REDIS_PASSWORD", "PORT",
    ):  # fmt: skip
        monkeypatch.delenv(name, raising=False)


class TestDatabaseUrl:
    def test_embedded_default_is_sqlite_under_var(self) -> None:
        """With nothing configured PixWave uses ./var/pixwave.db."""
        assert make_settings().sqlalchemy_url == "sqlite+aiosqlite:///var/pixwave.db"

    def test_original_mysql_names(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """DB_HOST, DB_PORT, DB_DATABASE, DB_USERNAME, DB_PASSWORD build a MySQL URL."""
        for name, value in {
            "DB_CONNECTION": "mysql", "DB_HOST": "mysql", "DB_PORT": "3307",
            "DB_DATABASE": "laravel", "DB_USERNAME": "laravel", "DB_PASSWORD": "s3cr@t",
        }.items():  # fmt: skip
            monkeypatch.setenv(name, value)
        assert (
            make_settings().sqlalchemy_url
            == "mysql+aiomysql://laravel:s3cr%40t@mysql:3307/laravel?charset=utf8mb4"
        )

    def test_database_url_wins_and_gets_an_async_driver(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A plain mysql:// URL is accepted and upgraded to aiomysql."""
        monkeypatch.setenv("DB_HOST", "ignored")
        monkeypatch.setenv("DATABASE_URL", "mysql://u:p@db:3306/pix")
        assert make_settings().sqlalchemy_url == "mysql+aiomysql://u:p@db:3306/pix"

    def test_sqlite_connection_uses_db_database_as_path(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Laravel's sqlite convention: DB_DATABASE is the file."""
        monkeypatch.setenv("DB_CONNECTION", "sqlite")
        monkeypatch.setenv("DB_DATABASE", "/data/pix.db")
        assert make_settings().sqlalchemy_url == "sqlite+aiosqlite:////data/pix.db"

    def test_unknown_connection_is_an_error(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """A typo in DB_CONNECTION fails loudly instead of falling back."""
        monkeypatch.setenv("DB_CONNECTION", "postgres")
        with pytest.raises(ValueError, match="not supported"):
            _ = make_settings().sqlalchemy_url


class TestRedis:
    def test_no_redis_by_default(self) -> None:
        """The embedded default needs no Redis."""
        assert make_settings().redis_dsn is None

    def test_original_names_with_null_password(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """REDIS_PASSWORD=null (Laravel's way of saying none) means no password."""
        monkeypatch.setenv("REDIS_HOST", "cache")
        monkeypatch.setenv("REDIS_PORT", "6380")
        monkeypatch.setenv("REDIS_PASSWORD", "null")
        assert make_settings().redis_dsn == "redis://cache:6380/0"

    def test_password_is_used(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """A real password is URL-quoted into the DSN."""
        monkeypatch.setenv("REDIS_HOST", "cache")
        monkeypatch.setenv("REDIS_PASSWORD", "p/w")
        assert make_settings().redis_dsn == "redis://:p%2Fw@cache:6379/0"

    def test_redis_url_wins(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """REDIS_URL is taken as is."""
        monkeypatch.setenv("REDIS_HOST", "cache")
        monkeypatch.setenv("REDIS_URL", "redis://other:1/2")
        assert make_settings().redis_dsn == "redis://other:1/2"


class TestPublicUrl:
    def test_follows_the_port_served(self) -> None:
        """Without APP_URL, the public URL is this machine's served port, not 8000."""
        assert make_settings(port=8765).public_url == "http://localhost:8765"

    @pytest.mark.parametrize("app_url", ["https://pix.example.com/", "https://pix.example.com"])
    def test_app_url_wins(self, app_url: str) -> None:
        """APP_URL (original name) is used as given, without a trailing slash."""
        settings = make_settings(port=8765, app_url=app_url)
        assert settings.public_url == "https://pix.example.com"

    def test_laravel_null_means_unset(self) -> None:
        """`APP_URL=null` from an original .env counts as absent."""
        assert make_settings(port=9000, app_url="null").public_url == "http://localhost:9000"

    def test_every_optional_setting_reads_null_as_absent(self) -> None:
        """One rule for every setting that may be absent, none for the others."""
        settings = make_settings(
            database_url="null", aws_sns_topic_arn="", metrics_token="NULL", log_level="null"
        )
        assert settings.is_embedded
        assert (settings.aws_sns_topic_arn, settings.metrics_token) == (None, None)
        assert settings.log_level == "null"  # not optional: kept as written


def test_env_example_documents_every_setting() -> None:
    """Every setting appears in .env.example, so operators can find it."""
    from pathlib import Path

    from pixwave.config import Settings

    text = (Path(__file__).parent.parent / ".env.example").read_text()
    missing = [name.upper() for name in Settings.model_fields if name.upper() not in text]
    assert missing == []


def test_env_example_documents_every_gateway_setting() -> None:
    """…and every setting of every registered gateway family, by one of its names (a family
    configured per instance, ``PIXAPI_<NAME>_…``, by its suffix)."""
    from pathlib import Path

    from pydantic import AliasChoices

    from pixwave.gateways.specs import SPECS

    text = (Path(__file__).parent.parent / ".env.example").read_text()
    missing = []
    for spec in SPECS:
        model = spec.settings_model
        prefix = str(model.model_config.get("env_prefix", "")).upper()
        for name, field in model.model_fields.items():
            alias = field.validation_alias
            names = (
                [str(choice).upper() for choice in alias.choices]
                if isinstance(alias, AliasChoices)
                else [f"{prefix}{name.upper()}" if prefix else f"_{name.upper()}="]
            )
            if not any(candidate in text for candidate in names):
                missing.append(f"{spec.family}: {names[0]}")
    assert missing == []
