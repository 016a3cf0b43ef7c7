"""/lawyer: a volunteer lawyer applies (firm, licence number, specialties)."""

from __future__ import annotations

from dialogs.answers import text, text_step
from dialogs.applications.common import can_apply, file_application
from dialogs.core import Context, Done, Flow, Next, Result, Retry, Step
from dialogs.validate import lawyer_licence
from storage.data import Role

SPECIALTIES = (
    "labour",
    "injury",
    "contract",
    "property",
    "family",
    "inheritance",
    "elder",
    "other",
)


async def begin(ctx: Context) -> bool:
    if not await can_apply(ctx, Role.LAWYER):
        return False
    ctx.say(ctx.t("lawyer.intro"))
    return True


async def ask_specialties(ctx: Context) -> None:
    chosen = set(ctx.data.get("specialties", []))
    buttons = [
        ctx.raw_button(("✓ " if s in chosen else "") + ctx.t(f"apply.specialty_{s}"), s) for s in SPECIALTIES
    ]
    rows = [buttons[i : i + 2] for i in range(0, len(buttons), 2)]
    rows.append([ctx.button("lawyer.specialties_done", "done")])
    ctx.say(ctx.t("lawyer.ask_specialties"), choices=rows)


async def on_specialties(ctx: Context) -> Result:
    chosen: list[str] = list(ctx.data.get("specialties", []))
    if ctx.value in SPECIALTIES:
        if ctx.value in chosen:
            chosen.remove(ctx.value)
        else:
            chosen.append(ctx.value)
        ctx.data["specialties"] = chosen
        return Retry()
    if ctx.value == "done":
        if not chosen:
            return Retry("lawyer.pick_one")
        return Next("confirm")
    return Retry("common.use_buttons")


async def ask_confirm(ctx: Context) -> None:
    specialties = "、".join(ctx.t(f"apply.specialty_{s}") for s in ctx.data["specialties"])
    ctx.say(
        ctx.t(
            "lawyer.confirm",
            firm=ctx.data["firm"],
            licence=ctx.data["licence"],
            specialties=specialties,
        ),
        choices=[[ctx.button("apply.submit", "yes")]],
    )


async def on_confirm(ctx: Context) -> Result:
    if ctx.value != "yes":
        return Retry("common.use_buttons")
    details = {k: ctx.data[k] for k in ("firm", "licence", "specialties")}
    await file_application(ctx, Role.LAWYER, details)
    return Done()


FLOW = Flow(
    name="lawyer",
    command="lawyer",
    menu_key="menu.lawyer",
    menu_rank=71,
    begin=begin,
    steps=(
        text_step(
            "firm",
            "lawyer.ask_firm",
            read=text(max_len=80, min_len=2),
            error="lawyer.bad_firm",
            save="firm",
            then="licence",
            can_go_back=False,
        ),
        text_step(
            "licence",
            "lawyer.ask_licence",
            read=lawyer_licence,
            error="lawyer.bad_licence",
            save="licence",
            then="specialties",
        ),
        Step("specialties", ask_specialties, on_specialties),
        Step("confirm", ask_confirm, on_confirm),
    ),
)
