"""Asking for a phone number: the share-contact keyboard, or typed; mainland mobiles only."""

from __future__ import annotations

from dialogs.core import Context, Retry
from dialogs.messages import Ask, Kind, Outgoing
from dialogs.validate import mainland_mobile


def ask_for_phone(ctx: Context, question_key: str) -> None:
    """The question with Telegram's "share my number" keyboard under it."""
    ctx.replies.append(
        Outgoing(
            text=ctx.t(question_key),
            ask=Ask.CONTACT,
            ask_label=ctx.t("onboarding.share_phone"),
        )
    )


def own_phone(ctx: Context) -> str | Retry:
    """The sender's own number from a shared contact or typed text, or why not.

    A shared contact must be the sender's own: forwarding someone else's card is
    refused, since this number is stored as theirs.
    """
    incoming = ctx.incoming
    if incoming.kind is Kind.CONTACT and incoming.contact:
        if incoming.contact.owner_external_id not in (None, incoming.sender.external_id):
            return Retry("onboarding.not_your_contact")
        raw = incoming.contact.phone
    elif incoming.kind is Kind.TEXT:
        raw = incoming.text
    else:
        return Retry("onboarding.bad_phone")
    return mainland_mobile(raw) or Retry("onboarding.bad_phone")
