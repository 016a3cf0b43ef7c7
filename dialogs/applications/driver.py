"""/driver: a resident applies to drive for the volunteer group (plate, car model)."""

from __future__ import annotations

from dialogs.answers import text, text_step
from dialogs.applications.common import can_apply, file_application
from dialogs.core import Context, Done, Flow, Next, Result, Retry, Step
from dialogs.messages import Ask
from dialogs.phone import ask_for_phone, own_phone
from dialogs.validate import car_plate
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
        text_step(
            "plate", "driver.ask_plate", read=car_plate, error="driver.bad_plate", save="plate", then="model"
        ),
        text_step(
            "model",
            "driver.ask_model",
            read=text(max_len=40, min_len=2),
            error="driver.bad_model",
            save="car_model",
            then="confirm",
        ),
        Step("confirm", ask_confirm, on_confirm),
    ),
)
