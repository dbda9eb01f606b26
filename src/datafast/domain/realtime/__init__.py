"""Realtime: the live feed of a site's events for the dashboard (SSE), fed by the pub/sub adapter."""

from __future__ import annotations

from datafast.domain.realtime.hub import FeedMessage, RealtimeHub

__all__ = ("FeedMessage", "RealtimeHub")
