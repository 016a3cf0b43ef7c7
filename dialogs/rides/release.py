"""Two small flows on the driver side of rides.

``ride_release``: the driver can't make it. A reason (buttons, or typed) and the ride
goes back to the driver group, announced again; rider and booker are told a new
driver is being found. Started by the ``a:ride_release:<id>`` button with the ride id
and the pressed message in ``ctx.data``; the storage call re-checks that the ride is
still this driver's, so a stale flow can't release someone else's ride.

``ride_comment``: after rating, the rider (or booker) may add a few words.
"""

from __future__ import annotations

from dialogs.core import Context, Done, Flow, Next, Result, Retry, Step
from dialogs.rides import news
from dialogs.validate import clean_text
from storage import rides
from storage.data import Role

RELEASE_REASONS = ("car", "busy", "other")
MAX_REASON = 200
MAX_COMMENT = 500
LOW_RATING = 2  # as in driver.py: 1–2 stars reach staff


def _ride_id(ctx: Context) -> int:
    return int(ctx.data["ride_id"])


# -- release ------------------------------------------------------------------------


async def ask_reason(ctx: Context) -> None:
    ctx.say(
        ctx.t("ride_driver.release_ask_reason", id=_ride_id(ctx)),
        choices=[[ctx.button(f"ride_driver.release_reason_{r}", r)] for r in RELEASE_REASONS],
    )


async def on_reason(ctx: Context) -> Result:
    if ctx.value == "other":
        return Next("detail")
    if ctx.value in RELEASE_REASONS:
        return await _release(ctx, ctx.value)
    if ctx.value is None:  # typed instead of pressing: that is the reason itself
        text = clean_text(ctx.incoming.text, max_len=MAX_REASON)
        if text is None:
            return Retry("ride_driver.release_reason_too_long" if ctx.incoming.text.strip() else None)
        return await _release(ctx, f"other: {text}")
    return Retry("common.use_buttons")


async def ask_detail(ctx: Context) -> None:
    ctx.say(
        ctx.t("ride_driver.release_ask_text"),
        choices=[[ctx.button("ride_driver.release_skip", "skip")]],
    )


async def on_detail(ctx: Context) -> Result:
    if ctx.value == "skip":
        return await _release(ctx, "other")
    if ctx.value is not None:
        return Retry("common.use_buttons")
    text = clean_text(ctx.incoming.text, max_len=MAX_REASON)
    if text is None:
        return Retry("ride_driver.release_reason_too_long" if ctx.incoming.text.strip() else None)
    return await _release(ctx, f"other: {text}")


def _reason_text(ctx: Context, reason: str) -> str:
    if reason in RELEASE_REASONS:
        return ctx.t(f"ride_driver.release_reason_{reason}")
    return reason.removeprefix("other: ")


async def _release(ctx: Context, reason: str) -> Result:
    ride_id = _ride_id(ctx)
    ride = await rides.release(ctx.session, ride_id=ride_id, driver_user_id=ctx.user.id, reason=reason)
    if ride is None:
        current = await rides.get(ctx.session, ride_id)
        status = ctx.t(f"rides.status_{current.status.value}") if current else "—"
        ctx.say(ctx.t("ride_driver.release_too_late", status=status))
        return Done()
    # A fresh round number: the post's dedupe key must differ from every earlier post
    # of this ride (the first announcement and any escalations use small numbers).
    round_no = int(ctx.now().timestamp() * 1000)
    await news.announce(ctx.session, ride, again=True, round_no=round_no)
    await news.tell_parties(ctx.session, ride, "ride_driver.released_parties", dedupe=f"released:{round_no}")
    # Staff hear why, from whom: a pattern of releases is theirs to notice.
    await news.tell_staff(
        ctx.session,
        ride,
        "ride_driver.staff_released",
        dedupe=f"released:{round_no}",
        driver=ctx.user.display_name or f"#{ctx.user.id}",
        reason=_reason_text(ctx, reason),
    )
    ref = ctx.data.get("ref")
    if ref:  # the details message loses its status buttons
        ctx.say(ctx.t("ride_driver.release_note", id=ride_id), edit_ref=str(ref))
    ctx.say(ctx.t("ride_driver.release_done", id=ride_id))
    return Done()


RELEASE = Flow(
    name="ride_release",
    requires_role=Role.DRIVER,
    needs_context=True,
    steps=(
        Step("reason", ask_reason, on_reason, can_go_back=False),
        Step("detail", ask_detail, on_detail),
    ),
)


# -- comment after a rating ---------------------------------------------------------


async def ask_comment(ctx: Context) -> None:
    ctx.say(
        ctx.t("ride_driver.comment_ask"),
        choices=[[ctx.button("ride_driver.rate_no_comment", "skip")]],
    )


async def on_comment(ctx: Context) -> Result:
    if ctx.value == "skip":
        ctx.say(ctx.t("ride_driver.comment_skipped"))
        return Done()
    if ctx.value is not None:
        return Retry("common.use_buttons")
    text = clean_text(ctx.incoming.text, max_len=MAX_COMMENT)
    if text is None:
        return Retry("ride_driver.comment_too_long" if ctx.incoming.text.strip() else None)
    # storage checks again that this person rated this ride.
    saved = await rides.comment(ctx.session, ride_id=_ride_id(ctx), rater_user_id=ctx.user.id, text=text)
    ctx.say(ctx.t("ride_driver.comment_saved" if saved else "ride_driver.comment_failed"))
    ride = await rides.get(ctx.session, _ride_id(ctx)) if saved else None
    if ride is not None and ride.rating is not None and ride.rating <= LOW_RATING:
        await news.tell_staff(
            ctx.session,
            ride,
            "ride_driver.staff_low_comment",
            dedupe="low_comment",
            stars=ride.rating,
            comment=text,
        )
    return Done()


COMMENT = Flow(
    name="ride_comment",
    needs_context=True,
    steps=(Step("text", ask_comment, on_comment, can_go_back=False),),
)

FLOWS = (RELEASE, COMMENT)
