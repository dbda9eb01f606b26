"""An authenticator app for the tests: TOTP codes the server will accept, each usable once.

DataFast accepts the codes of the previous, current and next 30-second step, and only for a step
later than the last code it accepted (replay protection). :meth:`Authenticator.code` hands out
the earliest such step; when none is left it waits for the clock to reach the next step (it
never sleeps a guessed amount).
"""

from __future__ import annotations

import time

import pyotp

STEP = 30
MARGIN = 5.0
"""A previous-step code is only handed out with this many seconds left before it leaves the window."""


class Authenticator:
    def __init__(self, secret: str) -> None:
        self.totp = pyotp.TOTP(secret)
        self.last_step: int | None = None

    def code(self) -> str:
        while True:
            now = time.time()
            step = int(now // STEP)
            into = now - step * STEP
            allowed = [step, step + 1] if into > STEP - MARGIN else [step - 1, step, step + 1]
            fresh = [s for s in allowed if self.last_step is None or s > self.last_step]
            if fresh:
                self.last_step = min(fresh)
                return self.totp.generate_otp(self.last_step)
            # Every allowed step is used: wait until the clock enters the next one.
            time.sleep(STEP - into + 0.01)

    def reuse(self) -> str:
        """The code accepted last (the server must refuse it now)."""
        assert self.last_step is not None
        return self.totp.generate_otp(self.last_step)
