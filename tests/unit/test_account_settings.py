"""Settings for sign-up, mail and OAuth login."""

from __future__ import annotations

from pathlib import Path

import pytest

from datafast.settings import SettingsError, load_settings


def test_defaults_open_signup_and_log_mail(tmp_path: Path) -> None:
    accounts = load_settings({"DATA_DIR": str(tmp_path)}, env_file=None).accounts

    assert accounts.signup_open is True
    assert accounts.smtp_url is None
    assert accounts.resend_api_key is None
    assert accounts.mail_from == "DataFast <noreply@localhost>"
    assert accounts.oauth == ()


def test_mail_from_follows_base_url_and_signup_closes(tmp_path: Path) -> None:
    settings = load_settings(
        {"DATA_DIR": str(tmp_path), "BASE_URL": "https://stats.example.com", "SIGNUP_OPEN": "false"},
        env_file=None,
    )

    assert settings.accounts.mail_from == "DataFast <noreply@stats.example.com>"
    assert settings.accounts.signup_open is False
    assert settings.secure_cookies is True


def test_oauth_providers_with_default_and_overridden_endpoints(tmp_path: Path) -> None:
    settings = load_settings(
        {
            "DATA_DIR": str(tmp_path),
            "GOOGLE_CLIENT_ID": "g",
            "GOOGLE_CLIENT_SECRET": "gs",
            "X_CLIENT_ID": "x",
            "X_CLIENT_SECRET": "xs",
            "X_TOKEN_URL": "http://127.0.0.1:9/token",
        },
        env_file=None,
    )

    google = settings.accounts.oauth_provider("google")
    x = settings.accounts.oauth_provider("x")
    assert google is not None
    assert google.token_url == "https://oauth2.googleapis.com/token"
    assert "email" in google.scope
    assert x is not None
    assert x.token_url == "http://127.0.0.1:9/token"
    assert settings.accounts.oauth_provider("github") is None


@pytest.mark.parametrize(
    ("env", "name"),
    [
        ({"SMTP_URL": "mail.example.com"}, "SMTP_URL"),
        ({"SMTP_URL": "http://mail.example.com"}, "SMTP_URL"),
        ({"SIGNUP_OPEN": "maybe"}, "SIGNUP_OPEN"),
        ({"SIGNUP_OPEN": "auto"}, "SIGNUP_OPEN"),
        ({"GOOGLE_CLIENT_ID": "g"}, "GOOGLE_CLIENT_SECRET"),
        ({"X_CLIENT_ID": "x", "X_CLIENT_SECRET": "s", "X_AUTHORIZE_URL": "ftp://x"}, "X_AUTHORIZE_URL"),
        ({"RESEND_API_URL": "resend"}, "RESEND_API_URL"),
    ],
)
def test_bad_account_settings_name_the_variable(tmp_path: Path, env: dict[str, str], name: str) -> None:
    with pytest.raises(SettingsError, match=name):
        load_settings({"DATA_DIR": str(tmp_path), **env}, env_file=None)


def test_two_factor_for_owners_is_off_unless_the_operator_requires_it(tmp_path: Path) -> None:
    base = {"DATA_DIR": str(tmp_path)}
    assert load_settings(base, env_file=None).accounts.require_two_factor_for_owners is False
    required = load_settings({**base, "REQUIRE_TWO_FACTOR_FOR_OWNERS": "true"}, env_file=None)
    assert required.accounts.require_two_factor_for_owners is True
    with pytest.raises(SettingsError, match="REQUIRE_TWO_FACTOR_FOR_OWNERS"):
        load_settings({**base, "REQUIRE_TWO_FACTOR_FOR_OWNERS": "sometimes"}, env_file=None)
