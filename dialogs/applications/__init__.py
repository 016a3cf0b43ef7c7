"""Volunteering: residents apply in chat to drive (/driver) or to give legal advice
(/lawyer); staff see each application with approve and reject buttons (/pending),
and are reminded of any left waiting a day."""

from __future__ import annotations

from dialogs.applications import common, driver, lawyer, staff
from dialogs.core import Context
from dialogs.feature import Action, Command, Feature, Intent, Jobs
from storage import applications, outbox
from storage.data import Role


async def _mydata(ctx: Context) -> list[str]:
    return [
        common.summary(ctx.tr, app, ctx.user.display_name or "—")
        + "\n"
        + ctx.t("mydata.application_status", status=ctx.t(f"apply.status_{app.status}"))
        for app in await applications.for_user(ctx.session, ctx.user.id)
    ]


async def _erase(ctx: Context, user_id: int) -> None:
    """/forget: applications stay (who decided what) without what they said, and the
    cards staff were sent about them say nothing any more."""
    mine = await applications.for_user(ctx.session, user_id)
    await outbox.erase_about(ctx.session, [f"application:{app.id}:" for app in mine])
    await applications.erase_details(ctx.session, user_id)


FEATURE = Feature(
    name="applications",
    flows=(driver.FLOW, lawyer.FLOW),
    commands=(
        Command(
            "pending", staff.pending_command, requires_role=Role.STAFF, description_key="commands.pending"
        ),
    ),
    actions=(
        Action(common.Approve, staff.approve_action, requires_role=Role.STAFF),
        Action(common.Reject, staff.reject_action, requires_role=Role.STAFF),
    ),
    intents=(
        Intent(
            "driver",
            (
                "我想当司机",
                "当志愿司机",
                "申请司机",
                "志愿者司机",
                "我是司机",
                "become a driver",
                "volunteer driver",
                "i want to drive",
                "apply as driver",
            ),
        ),
        Intent(
            "lawyer",
            (
                "我是律师",
                "申请律师",
                "志愿律师",
                "律师志愿者",
                "i am a lawyer",
                "volunteer lawyer",
                "apply as lawyer",
            ),
        ),
    ),
    jobs=Jobs(sources=(common.application_reminders,), runners={"application-reminder": common.remind_staff}),
    mydata=(_mydata,),
    erasers=(_erase,),
)
