"""DataFast's own billing in hosted mode (``BILLING=stripe``): plans, trials, Stripe Checkout and
Customer Portal, the subscription webhooks, usage counted from the rollups, and the limits.

With ``BILLING=off`` (the default, for self-hosters) nothing here is called: no screen, no limit.
"""
