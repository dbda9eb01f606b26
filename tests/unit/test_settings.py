from __future__ import annotations

from pathlib import Path

import pytest

from datafast.settings import SettingsError, load_settings


def test_defaults_are_embedded_under_data_dir(tmp_path: Path) -> None:
    settings = load_settings({"DATA_DIR": str(tmp_path)}, env_file=None)

    assert settings.mode == "embedded"
    assert settings.database_url == f"sqlite+aiosqlite:///{tmp_path}/datafast.db"
    assert settings.clickhouse_url == f"chdb://{tmp_path}/clickhouse"
    assert settings.clickhouse_database == "datafast"
    assert settings.clickhouse_cluster is None
    assert settings.valkey_url is None
    assert (settings.host, settings.port, settings.workers) == ("127.0.0.1", 8000, 1)
    assert settings.base_url == "http://localhost:8000"
    assert settings.migrate_on_start is True
    assert settings.ingest_batch_rows == 1000


def test_secret_key_is_generated_once_and_kept(tmp_path: Path) -> None:
    first = load_settings({"DATA_DIR": str(tmp_path)}, env_file=None)
    second = load_settings({"DATA_DIR": str(tmp_path)}, env_file=None)

    assert len(first.secret_key) >= 32
    assert first.secret_key == second.secret_key
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


def test_env_file_is_read_and_environment_wins(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("PORT=9001\nLOG_LEVEL=debug\n")

    settings = load_settings({"DATA_DIR": str(tmp_path), "PORT": "9002"}, env_file=env_file)

    assert settings.port == 9002
    assert settings.log_level == "DEBUG"


def test_scaled_settings(tmp_path: Path) -> None:
    settings = load_settings(
        {
            "DATA_DIR": str(tmp_path),
            "DATABASE_URL": "postgres://u:p@db:5432/datafast",
            "CLICKHOUSE_URL": "https://u:p@ch.internal:8443/analytics",
            "CLICKHOUSE_CLUSTER": "main",
            "VALKEY_URL": "valkey://cache:6379/0",
            "SECRET_KEY": "k" * 40,
        },
        env_file=None,
    )

    assert settings.mode == "scaled"
    assert settings.database_url == "postgresql+asyncpg://u:p@db:5432/datafast"
    assert settings.clickhouse_database == "analytics"
    assert settings.clickhouse_cluster == "main"
    assert settings.migrate_on_start is False
    assert settings.ingest_batch_rows == 5000  # batches cross to a ClickHouse server
    assert settings.multi_process_problem() is None
    assert settings.secret_key == "k" * 40


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DATABASE_URL", "mysql://localhost/db"),
        ("CLICKHOUSE_URL", "tcp://localhost:9000"),
        ("CLICKHOUSE_URL", "http://host:notaport/db"),
        ("CLICKHOUSE_DATABASE", "bad-name;"),
        ("VALKEY_URL", "memcached://localhost"),
        ("PORT", "eighty"),
        ("PORT", "70000"),
        ("WORKERS", "0"),
        ("BASE_URL", "localhost:8000"),
        ("LOG_FORMAT", "xml"),
        ("LOG_LEVEL", "LOUD"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318"),
        ("MIGRATE_ON_START", "maybe"),
        ("SECRET_KEY", "short"),
    ],
)
def test_bad_value_names_the_variable(tmp_path: Path, name: str, value: str) -> None:
    with pytest.raises(SettingsError) as error:
        load_settings({"DATA_DIR": str(tmp_path), name: value}, env_file=None)

    message = str(error.value)
    assert message.startswith(name)
    assert "\n" not in message


def test_cluster_needs_a_server(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match=r"^CLICKHOUSE_CLUSTER"):
        load_settings({"DATA_DIR": str(tmp_path), "CLICKHOUSE_CLUSTER": "main"}, env_file=None)


def test_embedded_refuses_several_processes(tmp_path: Path) -> None:
    settings = load_settings({"DATA_DIR": str(tmp_path)}, env_file=None)

    assert "chDB" in (settings.multi_process_problem() or "")
