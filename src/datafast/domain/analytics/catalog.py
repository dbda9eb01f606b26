"""What can be asked: the dimensions, the metrics and the goal definitions, each held once.

The SQL behind each name is in :mod:`datafast.domain.analytics.queries` (traffic) and
:mod:`datafast.domain.analytics.conversions` (money); the rules for combining them are in
:mod:`datafast.domain.analytics.service`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

__all__ = (
    "ATTRIBUTION_DIMENSIONS",
    "DIMENSIONS",
    "EVENT_COLUMNS",
    "EVENT_METRICS",
    "IDENTITY_PROPS",
    "METRICS",
    "MONEY_METRICS",
    "PAGE_METRICS",
    "PROP_PREFIX",
    "REVENUE_METRICS",
    "SESSION_COLUMNS",
    "SESSION_METRICS",
    "VISIT_METRICS",
    "Dimension",
    "GoalDefinition",
    "Scope",
    "dimension",
    "is_identity_prop",
)

Scope = Literal["session", "event"]


@dataclass(frozen=True, slots=True)
class Dimension:
    name: str
    scope: Scope
    column: str
    """Column in ``sessions`` (session scope) or ``events`` (event scope)."""
    prop_key: str | None = None
    public: bool = False
    """Read for a share link (aggregates only): a property's values never come from ``identify``
    events, whose properties are all about one person (see :data:`IDENTITY_PROPS`)."""


SESSION_COLUMNS: Mapping[str, str] = {
    "source": "referrer_source",
    "channel": "channel",
    "referrer": "referrer",
    "utm_source": "utm_source",
    "utm_medium": "utm_medium",
    "utm_campaign": "utm_campaign",
    "utm_term": "utm_term",
    "utm_content": "utm_content",
    "entry_page": "entry_page",
    "exit_page": "exit_page",
    "country": "country",
    "region": "region",
    "city": "city",
    "device": "device",
    "browser": "browser",
    "os": "os",
}
"""Visit dimensions → ``sessions`` columns (a visit's source, landing page, place, device)."""
EVENT_COLUMNS: Mapping[str, str] = {"page": "pathname", "hostname": "hostname", "goal": "goal_name"}
"""Event dimensions → ``events`` columns (``prop:<key>`` reads ``props``)."""
ATTRIBUTION_DIMENSIONS: Mapping[str, str] = {**SESSION_COLUMNS, "hostname": "hostname"}
"""What the attribution report groups money by: a credited visit's ``sessions`` columns (its
hostname is the visit's first one)."""

DIMENSIONS: Mapping[str, Dimension] = {
    **{name: Dimension(name, "session", column) for name, column in SESSION_COLUMNS.items()},
    **{name: Dimension(name, "event", column) for name, column in EVENT_COLUMNS.items()},
}
PROP_PREFIX = "prop:"
IDENTITY_PROPS = frozenset(
    {
        *("email_hash", "email", "user_id", "userid", "visitor_id", "session_id", "customer_id"),
        *("name", "first_name", "last_name", "full_name", "username", "phone", "ip", "address"),
    }
)
"""Properties that identify a person: what ``identify`` stores (``user_id``, ``email_hash``, the
traits passed with it) and the usual names of such traits elsewhere. A share link may not break
down or filter by them (:meth:`Dimension.public` also hides every ``identify`` property from it)."""


def is_identity_prop(key: str) -> bool:
    return key.strip().lower() in IDENTITY_PROPS


def dimension(name: str, *, public: bool = False) -> Dimension | None:
    """The dimension called ``name`` (``prop:<key>`` for a custom property), or None.

    ``public``: for a share link, whose property values exclude ``identify`` events.
    """
    if name.startswith(PROP_PREFIX):
        key = name[len(PROP_PREFIX) :]
        if not 0 < len(key) <= 100:
            return None
        return Dimension(name, "event", "props", prop_key=key, public=public)
    return DIMENSIONS.get(name)


METRICS: tuple[str, ...] = (
    "visitors",
    "visits",
    "pageviews",
    "views_per_visit",
    "bounce_rate",
    "visit_duration",
    "events",
    "conversions",
    "conversion_rate",
    "revenue",
    "revenue_per_visitor",
    "purchases",
    "average_order_value",
    "new_revenue",
    "renewal_revenue",
    "refunds",
)
"""Every metric, in the order the totals list them (all of them when none is asked for)."""
MONEY_METRICS = frozenset(
    {
        *("revenue", "new_revenue", "renewal_revenue", "refunds", "purchases", "average_order_value"),
        *("revenue_per_visitor", "conversions", "conversion_rate"),
    }
)
"""Read from the conversions and their credited visits (:mod:`datafast.domain.analytics.conversions`)."""
VISIT_METRICS = frozenset({"visits", "bounce_rate", "visit_duration", "views_per_visit"})
"""In the aggregate and the time series, these come from ``sessions``; money metrics from the
conversions; the others from ``events``."""
SESSION_METRICS = frozenset(METRICS)
"""What a breakdown by a visit dimension can show."""
EVENT_METRICS = frozenset({"visitors", "visits", "pageviews", "events", "views_per_visit"}) | MONEY_METRICS
"""What a breakdown by an event dimension can show (no bounce rate or visit duration per page)."""
PAGE_METRICS: tuple[str, ...] = ("scroll_depth",)
"""Metrics of the page breakdown only (``dimensions: ["page"]``), never in totals: ``scroll_depth``
is how far down the page its visitors scrolled, the average of each visitor's deepest point in %
(0 when the tracker's ``data-track-scroll`` sent nothing for it), from ``page_scrolls``."""
REVENUE_METRICS: tuple[str, ...] = (
    "revenue",
    "purchases",
    "average_order_value",
    "visitors",
    "conversions",
    "revenue_per_visitor",
    "new_revenue",
    "renewal_revenue",
    "refunds",
)
"""The revenue overview's metrics."""


@dataclass(frozen=True, slots=True)
class GoalDefinition:
    """A goal from the site's settings: a pageview of a path (``*`` matches anything) or an event by name.

    Tracker goals (``datafast.goal("signup")``) count without one; a definition adds pageview
    goals and custom events, and an event definition names a tracker goal of the same event name.
    """

    name: str
    kind: Literal["pageview", "event"]
    match: str
    """The path pattern (pageview) or the event name (event)."""

    @property
    def path_regex(self) -> str:
        return "^" + ".*".join(re.escape(part) for part in self.match.split("*")) + "$"
