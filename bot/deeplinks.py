"""Signed deep links for community posters: ``https://t.me/<bot>?start=<payload>``.

A poster's QR code opens the bot with ``/start <payload>``; the payload names a
community and carries an HMAC of it, ``c<id>-<12 base64url characters>`` (72 bits),
so nobody can make links for communities by counting, and a typo or a forged link
is recognised. Linli passes on only what it verified: the channel rewrites the
/start text to ``community:<id>`` (``dialogs.onboarding`` offers that community first)
or to nothing (a wrong payload is ignored kindly: onboarding simply starts as usual).

The key is ``LINLI_LINK_SECRET``, or, when unset, one derived from the bot token.
Printed posters live for years: set the secret once and keep it (and a new bot token
then voids no poster).

``startgroup`` links (``https://t.me/<bot>?startgroup=drivers``) open Telegram's
"add to group" picker; once in the group, staff send /bind_driver_group there.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

from bot.settings import Settings

# What onboarding reads from /start's text (see dialogs/onboarding/flow.py).
VERIFIED_PREFIX = "community:"
_PAYLOAD = re.compile(r"^c(\d{1,12})-([A-Za-z0-9_-]{12})$")
STARTGROUP_PAYLOAD = "drivers"


def link_key(settings: Settings) -> bytes:
    if settings.link_secret is not None:
        return settings.link_secret.get_secret_value().encode()
    if settings.telegram_token is None:
        raise ValueError("set LINLI_LINK_SECRET (or LINLI_TELEGRAM_TOKEN) to sign poster links")
    token = settings.telegram_token.get_secret_value().encode()
    return hmac.new(token, b"linli poster links", hashlib.sha256).digest()


def _mac(key: bytes, community_id: int) -> str:
    digest = hmac.new(key, f"community:{community_id}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode()[:12]


def community_payload(key: bytes, community_id: int) -> str:
    """The /start payload for a community's poster (at most 64 characters, as Telegram wants)."""
    return f"c{community_id}-{_mac(key, community_id)}"


def verify(key: bytes, payload: str) -> int | None:
    """The community id a payload was signed for, or None."""
    found = _PAYLOAD.match(payload.strip())
    if found is None:
        return None
    community_id = int(found.group(1))
    if not hmac.compare_digest(found.group(2), _mac(key, community_id)):
        return None
    return community_id


def start_text(key: bytes, payload: str) -> str:
    """What /start's text becomes for the dialogs: the verified community, or nothing."""
    community_id = verify(key, payload) if payload else None
    return "" if community_id is None else f"{VERIFIED_PREFIX}{community_id}"


def start_link(bot_username: str, payload: str) -> str:
    return f"https://t.me/{bot_username}?start={payload}"


def startgroup_link(bot_username: str) -> str:
    return f"https://t.me/{bot_username}?startgroup={STARTGROUP_PAYLOAD}"
