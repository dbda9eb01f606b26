"""Which chat webhooks a site may set, and the body each kind of webhook takes."""

from __future__ import annotations

import pytest

from datafast.domain.reports.alerts import chat_body, check_webhook_url
from datafast.errors import InvalidInput
from datafast.settings import AccountSettings

HOSTS = AccountSettings().alert_webhook_hosts


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.slack.com/services/T000/B000/XXXX",
        "https://discord.com/api/webhooks/123/abc",
        "https://discordapp.com/api/webhooks/123/abc",
    ],
)
def test_slack_and_discord_webhooks_are_accepted(url: str) -> None:
    assert check_webhook_url(f" {url} ", HOSTS) == url


@pytest.mark.parametrize(
    "url",
    [
        "http://hooks.slack.com/services/T000/B000/XXXX",  # in the clear
        "https://hooks.slack.com.evil.example/services/x",
        "https://169.254.169.254/latest/meta-data/",
        "http://127.0.0.1:8080/",  # loopback, but not a listed host
        "javascript:alert(1)",
        "",
    ],
)
def test_other_urls_are_refused(url: str) -> None:
    with pytest.raises(InvalidInput):
        check_webhook_url(url, HOSTS)


def test_a_listed_loopback_host_may_use_http() -> None:
    assert check_webhook_url("http://127.0.0.1:9/hook", ["127.0.0.1"]) == "http://127.0.0.1:9/hook"


def test_discord_takes_content_and_slack_text() -> None:
    assert chat_body("https://discord.com/api/webhooks/1/a", "hi") == {"content": "hi"}
    assert chat_body("https://hooks.slack.com/services/x", "hi") == {"text": "hi"}
