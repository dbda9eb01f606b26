"""TOTP two-factor sign-in (RFC 6238) with single-use recovery codes: the rules, here and nowhere else.

Enrolment
    :func:`start_enrolment` makes a new random secret and keeps it *pending* (a ``two_factor`` row
    with ``enabled_at`` NULL); the user sees the secret, its ``otpauth://`` URI and a QR code of
    the URI. :func:`confirm_enrolment` turns it on once the user proves their app has it with one
    valid code, and answers :data:`RECOVERY_CODE_COUNT` recovery codes, shown this once. Enabling
    signs the user's other browsers out (they signed in with the password alone). Starting again
    replaces a pending secret; an enabled one must be disabled first (409).

Codes
    A TOTP code is 6 digits for a 30-second step; the step before and after the current one are
    accepted too (clock drift). **Replay protection**: the step of the last accepted code is
    stored, and a code of that step or an earlier one is refused, so a code works once — one
    conditional UPDATE decides, so two concurrent uses cannot both pass. A recovery code
    (``xxxxx-xxxxx-xxxxx``, 75 random bits; dashes, spaces and case are ignored) works instead of
    a TOTP code, once; only its SHA-256 is stored (a fast hash is enough for 75 random bits).

    Every check of a code (sign-in, confirm, regenerate, disable) counts against one per-user
    limit: after :data:`CODE_LIMIT` wrong codes in :data:`CODE_WINDOW` seconds the next attempt
    answers 429 without checking. A right code resets the count.

Disabling and regenerating
    Both need a current TOTP code **or** an unused recovery code (not the password: accounts made
    through OAuth have none, and a stolen session plus a phished password should not remove the
    factor). Disabling deletes the secret and the recovery codes; regenerating replaces the codes.

Sign-in
    A password (or OAuth) sign-in of a user with the factor on gets a :func:`challenge` instead of a
    session: a token signed with SECRET_KEY, naming the user, valid :data:`CHALLENGE_TTL` seconds.
    :func:`complete_sign_in` takes the challenge and a code and answers the user to start a session
    for. The challenge holds no secret: it only lets its bearer try codes, under the limit above.

At rest
    The secret is encrypted with the :class:`~datafast.domain.revenue.sealing.SecretBox` (Fernet),
    under a key of its own derived from SECRET_KEY (changing SECRET_KEY makes the enrolled
    secrets unreadable: those users must use a recovery code, then enrol again).

Operator setting
    With ``REQUIRE_TWO_FACTOR_FOR_OWNERS=true``, :func:`is_missing_required` is true for a user who
    owns a site and has no enabled factor; the web layer then refuses their requests (403) except
    those needed to enrol, read who they are and sign out.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import pyotp
import segno
from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from datafast.db.models import AuthSession, Membership, RecoveryCode, Role, TwoFactor, User
from datafast.domain.accounts.tokens import sign, signature_matches
from datafast.domain.revenue.sealing import SecretBox
from datafast.errors import Conflict, InvalidInput, TooManyRequests, Unauthorized
from datafast.lib.ratelimit import RateLimiter

__all__ = (
    "CHALLENGE_TTL",
    "CODE_LIMIT",
    "CODE_WINDOW",
    "RECOVERY_CODE_COUNT",
    "Enrolment",
    "TwoFactorState",
    "challenge",
    "complete_sign_in",
    "confirm_enrolment",
    "disable",
    "is_enabled",
    "is_missing_required",
    "regenerate_recovery_codes",
    "start_enrolment",
    "state",
    "user_of_challenge",
)

ISSUER = "DataFast"
STEP = 30
DRIFT_STEPS = 1
CODE_LIMIT = 5
CODE_WINDOW = 15 * 60
CHALLENGE_TTL = 5 * 60
RECOVERY_CODE_COUNT = 10
_RECOVERY_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"  # base32, lower case: 5 bits a character
_CHALLENGE_PURPOSE = "two-factor-challenge"
WRONG_CODE = "Wrong or expired code"
USED_CODE = "This code was already used; wait for the next one"


@dataclass(frozen=True, slots=True)
class Enrolment:
    secret: str
    """Base32, for typing into an app by hand."""
    uri: str
    """``otpauth://totp/DataFast:<email>?secret=…&issuer=DataFast``"""
    qr_svg: str
    """The URI as a QR code, an inline ``<svg>`` element."""


@dataclass(frozen=True, slots=True)
class TwoFactorState:
    enabled: bool
    pending: bool
    recovery_codes_left: int
    required: bool
    """The operator requires it of this user (an owner) and it is not enabled yet."""


def _box(secret_key: str) -> SecretBox:
    # A key of its own (not the webhook secrets' key): HMAC(SECRET_KEY) as the box's input key.
    return SecretBox(sign(secret_key, "two-factor secrets", "v1"))


def _now_step() -> int:
    return int(time.time()) // STEP


def _normalize_recovery(code: str) -> str:
    return "".join(code.split()).replace("-", "").lower()


def _hash_recovery(code: str) -> str:
    return hashlib.sha256(_normalize_recovery(code).encode()).hexdigest()


def _new_recovery_code() -> str:
    raw = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(15))
    return "-".join(raw[i : i + 5] for i in range(0, 15, 5))


async def _row(db: AsyncSession, user_id: uuid.UUID) -> TwoFactor | None:
    return await db.scalar(select(TwoFactor).where(TwoFactor.user_id == user_id))


async def is_enabled(db: AsyncSession, user_id: uuid.UUID) -> bool:
    found = await db.scalar(
        select(TwoFactor.id).where(TwoFactor.user_id == user_id, TwoFactor.enabled_at.is_not(None))
    )
    return found is not None


async def _owns_a_site(db: AsyncSession, user_id: uuid.UUID) -> bool:
    found = await db.scalar(
        select(Membership.id).where(Membership.user_id == user_id, Membership.role == Role.OWNER).limit(1)
    )
    return found is not None


async def is_missing_required(db: AsyncSession, user_id: uuid.UUID, *, required_for_owners: bool) -> bool:
    """The operator requires a second factor of owners, this user owns a site and has none enabled."""
    if not required_for_owners:
        return False
    return not await is_enabled(db, user_id) and await _owns_a_site(db, user_id)


async def state(db: AsyncSession, user_id: uuid.UUID, *, required_for_owners: bool) -> TwoFactorState:
    row = await _row(db, user_id)
    enabled = row is not None and row.enabled_at is not None
    left = 0
    if enabled:
        left = int(
            await db.scalar(
                select(func.count())
                .select_from(RecoveryCode)
                .where(RecoveryCode.user_id == user_id, RecoveryCode.used_at.is_(None))
            )
            or 0
        )
    required = required_for_owners and not enabled and await _owns_a_site(db, user_id)
    return TwoFactorState(
        enabled=enabled,
        pending=row is not None and row.enabled_at is None,
        recovery_codes_left=left,
        required=required,
    )


async def start_enrolment(db: AsyncSession, secret_key: str, user: User) -> Enrolment:
    row = await _row(db, user.id)
    if row is not None and row.enabled_at is not None:
        raise Conflict("Two-factor sign-in is already on; turn it off first to change the app")
    secret = pyotp.random_base32()
    sealed = _box(secret_key).seal(secret)
    if row is None:
        db.add(TwoFactor(user_id=user.id, secret_encrypted=sealed))
    else:
        row.secret_encrypted = sealed
        row.last_used_step = None
    await db.flush()
    uri = pyotp.TOTP(secret).provisioning_uri(name=user.email, issuer_name=ISSUER)
    svg = io.BytesIO()
    segno.make(uri, error="m").save(svg, kind="svg", xmldecl=False, svgns=True, omitsize=True, border=2)
    return Enrolment(secret=secret, uri=uri, qr_svg=svg.getvalue().decode())


async def _limit(limiter: RateLimiter, user_id: uuid.UUID) -> str:
    key = f"two-factor:user:{user_id}"
    verdict = await limiter.peek(key, CODE_LIMIT, CODE_WINDOW)
    if not verdict.allowed:
        raise TooManyRequests(
            f"Too many wrong codes; try again in {verdict.retry_after} seconds", verdict.retry_after
        )
    return key


async def _use_totp(db: AsyncSession, secret_key: str, row: TwoFactor, code: str) -> bool | None:
    """True: accepted (and now used); False: a right code already used; None: wrong."""
    secret = _box(secret_key).open(row.secret_encrypted)
    if secret is None:  # sealed under another SECRET_KEY: no TOTP code can match
        return None
    totp = pyotp.TOTP(secret)
    now = _now_step()
    matched = [
        step
        for step in range(now - DRIFT_STEPS, now + DRIFT_STEPS + 1)
        if hmac.compare_digest(totp.generate_otp(step), code)
    ]
    if not matched:
        return None
    step = max(matched)
    # One UPDATE decides: of two requests with the same code, only one moves the step forward.
    result = await db.execute(
        update(TwoFactor)
        .where(
            TwoFactor.id == row.id,
            or_(TwoFactor.last_used_step.is_(None), TwoFactor.last_used_step < step),
        )
        .values(last_used_step=step)
        .returning(TwoFactor.id)
        .execution_options(synchronize_session=False)
    )
    return result.scalar_one_or_none() is not None


async def _use_recovery_code(db: AsyncSession, user_id: uuid.UUID, code: str) -> bool:
    result = await db.execute(
        update(RecoveryCode)
        .where(
            RecoveryCode.user_id == user_id,
            RecoveryCode.code_hash == _hash_recovery(code),
            RecoveryCode.used_at.is_(None),
        )
        .values(used_at=datetime.now(UTC))
        .returning(RecoveryCode.id)
        .execution_options(synchronize_session=False)
    )
    return result.scalar_one_or_none() is not None


async def _check_code(
    db: AsyncSession,
    limiter: RateLimiter,
    secret_key: str,
    row: TwoFactor,
    code: str,
    *,
    recovery: bool,
    error: type[InvalidInput] | type[Unauthorized],
) -> None:
    """Accept ``code`` once (a TOTP code, or a recovery code when ``recovery``), else raise ``error``."""
    key = await _limit(limiter, row.user_id)
    code = code.strip().replace(" ", "")
    outcome: bool | None = None
    if code.isdigit() and len(code) == 6:
        outcome = await _use_totp(db, secret_key, row, code)
    elif recovery and await _use_recovery_code(db, row.user_id, code):
        outcome = True
    if outcome is True:
        await limiter.reset(key)
        return
    await limiter.hit(key, CODE_LIMIT, CODE_WINDOW)
    message = USED_CODE if outcome is False else WRONG_CODE
    raise error(message)


async def _new_recovery_codes(db: AsyncSession, user_id: uuid.UUID) -> list[str]:
    await db.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user_id))
    codes = [_new_recovery_code() for _ in range(RECOVERY_CODE_COUNT)]
    db.add_all(RecoveryCode(user_id=user_id, code_hash=_hash_recovery(c)) for c in codes)
    await db.flush()
    return codes


async def confirm_enrolment(
    db: AsyncSession,
    limiter: RateLimiter,
    secret_key: str,
    user: User,
    code: str,
    *,
    keep_session: uuid.UUID | None = None,
) -> list[str]:
    """Turn the pending factor on with a code from the app; returns the recovery codes (shown once)."""
    row = await _row(db, user.id)
    if row is None:
        raise InvalidInput("Start setting up two-factor sign-in first")
    if row.enabled_at is not None:
        raise Conflict("Two-factor sign-in is already on")
    # Only a TOTP code proves the app has the secret (there are no recovery codes yet).
    await _check_code(db, limiter, secret_key, row, code, recovery=False, error=InvalidInput)
    row.enabled_at = datetime.now(UTC)
    codes = await _new_recovery_codes(db, user.id)
    # Browsers signed in with the password alone lose their session: from now on it takes both.
    query = delete(AuthSession).where(AuthSession.user_id == user.id)
    if keep_session is not None:
        query = query.where(AuthSession.id != keep_session)
    await db.execute(query)
    return codes


async def _enabled_row(db: AsyncSession, user_id: uuid.UUID) -> TwoFactor:
    row = await _row(db, user_id)
    if row is None or row.enabled_at is None:
        raise Conflict("Two-factor sign-in is not on")
    return row


async def regenerate_recovery_codes(
    db: AsyncSession, limiter: RateLimiter, secret_key: str, user: User, code: str
) -> list[str]:
    """New recovery codes (the old ones stop working), for a current TOTP or recovery code."""
    row = await _enabled_row(db, user.id)
    await _check_code(db, limiter, secret_key, row, code, recovery=True, error=InvalidInput)
    return await _new_recovery_codes(db, user.id)


async def disable(db: AsyncSession, limiter: RateLimiter, secret_key: str, user: User, code: str) -> None:
    """Turn the factor off, for a current TOTP code or a recovery code (see the module docstring)."""
    row = await _enabled_row(db, user.id)
    await _check_code(db, limiter, secret_key, row, code, recovery=True, error=InvalidInput)
    await db.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    await db.delete(row)
    await db.flush()


def challenge(secret_key: str, user: User) -> str:
    """A token that lets its bearer try a second-factor code for ``user`` for CHALLENGE_TTL seconds."""
    value = f"{user.id.hex}.{int(time.time()) + CHALLENGE_TTL}.{secrets.token_urlsafe(8)}"
    return f"{value}.{sign(secret_key, _CHALLENGE_PURPOSE, value)}"


def user_of_challenge(secret_key: str, token: str) -> uuid.UUID:
    """The user a challenge names; 401 when it is forged, malformed or expired."""
    value, _, signature = token.rpartition(".")
    parts = value.split(".")
    if len(parts) != 3 or not signature_matches(secret_key, _CHALLENGE_PURPOSE, value, signature):
        raise Unauthorized("This sign-in expired; enter your email and password again")
    try:
        user_id, expires = uuid.UUID(hex=parts[0]), int(parts[1])
    except ValueError:
        raise Unauthorized("This sign-in expired; enter your email and password again") from None
    if expires < time.time():
        raise Unauthorized("This sign-in expired; enter your email and password again")
    return user_id


async def complete_sign_in(
    db: AsyncSession, limiter: RateLimiter, secret_key: str, token: str, code: str
) -> User:
    """The second step of a sign-in: the challenge's user, once ``code`` (TOTP or recovery) is right."""
    user = await db.get(User, user_of_challenge(secret_key, token))
    row = await _row(db, user.id) if user is not None else None
    if user is None or row is None or row.enabled_at is None:
        raise Unauthorized("This sign-in expired; enter your email and password again")
    await _check_code(db, limiter, secret_key, row, code, recovery=True, error=Unauthorized)
    return user
