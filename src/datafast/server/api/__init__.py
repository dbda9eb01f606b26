"""The JSON API under ``/api/v1``: thin controllers over the domain services."""

from __future__ import annotations

from datafast.server.api.accounts import (
    AccountController,
    ApiKeyController,
    AuthController,
    OAuthController,
)
from datafast.server.api.billing import BillingController, BillingWebhookController
from datafast.server.api.imports import ImportController
from datafast.server.api.notifications import (
    NotificationController,
    SiteAlertsController,
    UnsubscribeController,
)
from datafast.server.api.privacy import PrivacyController
from datafast.server.api.revenue import (
    PaymentsController,
    RevenueController,
    SubscriptionsController,
    WebhookController,
)
from datafast.server.api.segments import AnnotationController, SegmentController
from datafast.server.api.sites import InvitationController, ShareController, SiteController
from datafast.server.api.stats import FunnelController, StatsController
from datafast.server.api.twofactor import TwoFactorController

__all__ = ("API_ROUTES",)

API_ROUTES = [
    AuthController,
    OAuthController,
    AccountController,
    TwoFactorController,
    ApiKeyController,
    SiteController,
    InvitationController,
    ShareController,
    StatsController,
    FunnelController,
    RevenueController,
    SubscriptionsController,
    PaymentsController,
    WebhookController,
    PrivacyController,
    ImportController,
    BillingController,
    BillingWebhookController,
    NotificationController,
    UnsubscribeController,
    SiteAlertsController,
    SegmentController,
    AnnotationController,
]
