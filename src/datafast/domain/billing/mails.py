"""The mails billing events call for."""

from __future__ import annotations

__all__ = ("notice_mail",)


def notice_mail(kind: str, base_url: str) -> tuple[str, str]:
    """(subject, text) of a billing notice: ``payment_failed``, ``trial_ending``, ``usage_80`` or
    ``usage_100``."""
    link = f"{base_url}/settings/billing"
    if kind.startswith("usage_"):
        percent = kind.removeprefix("usage_")
        return (
            f"Your DataFast sites used {percent}% of this month's events",
            f"Your sites have sent {percent}% of the events your plan includes this period.\n"
            "Nothing is lost: events keep being recorded, and a larger plan keeps it that way:\n\n"
            f"{link}\n",
        )
    if kind == "payment_failed":
        return (
            "Your DataFast payment failed",
            "We could not charge your card for DataFast. Your sites keep sending events for now;\n"
            f"update your payment method before the grace period ends:\n\n{link}\n",
        )
    return (
        "Your DataFast trial ends soon",
        f"Your DataFast trial ends in a few days. Choose a plan to keep your analytics running:\n\n{link}\n",
    )
