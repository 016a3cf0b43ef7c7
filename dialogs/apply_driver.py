"""/driver: a resident applies to drive for the volunteer group (plate, car model)."""

from __future__ import annotations

from dialogs.core import Context, Done, Flow, Next, Result, Retry, Step
from dialogs.messages import Ask, Kind
from dialogs.phone import ask_for_phone, own_phone
from dialogs.role_applications import can_apply, file_application
from dialogs.validate import car_plate, clean_text
from storage import users
from storage.data import Role


async def begin(ctx: Context) -> bool:
    if not await can_apply(ctx, Role.DRIVER):
        return False
    # Riders must be able to call their driver, so a driver needs a phone number.
    ctx.step = "plate" if ctx.user.phone else "phone"
    ctx.say(ctx.t("driver.intro"))
    return True


async def ask_phone(ctx: Context) -> None:
    ask_for_phone(ctx, "driver.ask_phone")
    ctx.say(ctx.t("driver.phone_required"))


async def on_phone(ctx: Context) -> Result:
    phone = own_phone(ctx)
    if isinstance(phone, Retry):
        return phone
    await users.set_phone(ctx.session, ctx.user.id, phone)
    return Next("plate")


async def ask_plate(ctx: Context) -> None:
    ctx.say(ctx.t("driver.ask_plate"))


async def on_plate(ctx: Context) -> Result:
    plate = car_plate(ctx.incoming.text) if ctx.incoming.kind is Kind.TEXT else None
    if plate is None:
        return Retry("driver.bad_plate")
    ctx.data["plate"] = plate
    return Next("model")


async def ask_model(ctx: Context) -> None:
    ctx.say(ctx.t("driver.ask_model"))


async def on_model(ctx: Context) -> Result:
    model = clean_text(ctx.incoming.text, max_len=40) if ctx.incoming.kind is Kind.TEXT else None
    if model is None or len(model) < 2:
        return Retry("driver.bad_model")
    ctx.data["car_model"] = model
    return Next("confirm")


async def ask_confirm(ctx: Context) -> None:
    ctx.say(
        ctx.t("driver.confirm", plate=ctx.data["plate"], model=ctx.data["car_model"]),
        choices=[[ctx.button("apply.submit", "yes")]],
    )


async def on_confirm(ctx: Context) -> Result:
    if ctx.value != "yes":
        return Retry("common.use_buttons")
    await file_application(ctx, Role.DRIVER, {"plate": ctx.data["plate"], "car_model": ctx.data["car_model"]})
    return Done()


FLOW = Flow(
    name="driver",
    command="driver",
    menu_key="menu.driver",
    menu_rank=70,
    begin=begin,
    steps=(
        Step("phone", ask_phone, on_phone, asks_for=Ask.CONTACT, can_go_back=False),
        Step("plate", ask_plate, on_plate),
        Step("model", ask_model, on_model),
        Step("confirm", ask_confirm, on_confirm),
    ),
)
