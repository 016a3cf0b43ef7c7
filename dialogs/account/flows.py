"""Small flows about the person themselves: /language and /forget."""

from __future__ import annotations

from dialogs.core import Context, Done, Flow, Result, Retry, Step
from dialogs.i18n import LANGUAGES, t
from storage import users


async def ask_language(ctx: Context) -> None:
    ctx.say(
        ctx.t("language.ask"),
        choices=[[ctx.raw_button(ctx.t(f"language.name_{lang}"), lang) for lang in LANGUAGES]],
    )


async def on_language(ctx: Context) -> Result:
    if ctx.value not in LANGUAGES:
        return Retry("common.use_buttons")
    await users.set_language(ctx.session, ctx.user.id, ctx.value)
    ctx.say(t(ctx.value, "language.changed"))
    return Done()


LANGUAGE = Flow(
    name="language",
    command="language",
    menu_key="menu.language",
    menu_rank=90,
    requires_onboarding=False,
    steps=(Step("choose", ask_language, on_language, can_go_back=False),),
)


async def ask_forget(ctx: Context) -> None:
    ctx.say(
        ctx.t("forget.confirm"),
        choices=[[ctx.button("forget.yes", "yes")], [ctx.button("forget.no", "no")]],
    )


async def on_forget(ctx: Context) -> Result:
    if ctx.value == "no":
        ctx.say(ctx.t("forget.kept"))
        return Done()
    if ctx.value != "yes":
        return Retry("common.use_buttons")
    # Every feature erases its own rows first (they may read the person's record),
    # then the person's own record goes.
    for feature in ctx.nav.features:
        for eraser in feature.erasers:
            await eraser(ctx, ctx.user.id)
    await users.forget_user(ctx.session, ctx.user.id)
    ctx.say(ctx.t("forget.done"), remove_keyboard=True)
    ctx.erased = True
    return Done()


FORGET = Flow(
    name="forget",
    command="forget",
    requires_onboarding=False,
    steps=(Step("confirm", ask_forget, on_forget, can_go_back=False),),
)
