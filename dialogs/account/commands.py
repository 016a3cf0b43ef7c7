"""/help and /cancel: the way out of anything, and the way into everything."""

from __future__ import annotations

from dialogs.core import Context


async def help_command(ctx: Context) -> None:
    commands = ctx.nav.menu_commands(ctx.user.roles)
    lines = [ctx.t("help.intro")]
    lines += [f"/{name} — {ctx.t(key)}" for name, key in commands]
    ctx.say("\n".join(lines))
    if ctx.nav.in_flow(ctx):
        ctx.say(ctx.t("help.in_flow"))
        await ctx.nav.reask(ctx)
    elif ctx.user.onboarded:
        await ctx.nav.show_menu(ctx)
    else:
        ctx.say(ctx.t("cancel.onboarding_hint"))


async def cancel_command(ctx: Context) -> None:
    await ctx.nav.cancel(ctx)
