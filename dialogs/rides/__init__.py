"""Rides for elderly residents: a guided booking (for oneself, someone else, or by staff
for a resident who phoned), posted to a volunteer driver group where the first claim
wins; status buttons for the driver, news for rider and booker, reminders, escalation
to staff, weekly series, ratings.

Read in this order: request.py (booking), news.py and cards.py (who hears what),
driver.py (claim and status), release.py, mine.py (/myrides), staff.py, jobs.py.
"""

from __future__ import annotations

from dialogs.feature import Action, Command, Feature, Intent
from dialogs.rides import buttons, driver, jobs, mine, privacy, release, request, staff
from storage.data import Role

FEATURE = Feature(
    name="rides",
    flows=(request.FLOW, mine.MINE, release.RELEASE, release.COMMENT),
    commands=(
        Command("myrides", mine.myrides_command, description_key="commands.myrides"),
        Command(
            "bind_driver_group",
            staff.bind_group_command,
            requires_role=Role.STAFF,
            in_private=False,
            in_groups=True,
            description_key="commands.bind_driver_group",
        ),
        Command(
            "unbind_driver_group",
            staff.unbind_group_command,
            requires_role=Role.STAFF,
            in_private=False,
            in_groups=True,
            description_key="commands.unbind_driver_group",
        ),
        Command(
            "drivers", staff.drivers_command, requires_role=Role.STAFF, description_key="commands.drivers"
        ),
    ),
    actions=(
        Action(buttons.Claim, driver.claim_action, requires_role=Role.DRIVER),
        Action(buttons.OnWay, driver.on_way_action, requires_role=Role.DRIVER),
        Action(buttons.PickedUp, driver.picked_up_action, requires_role=Role.DRIVER),
        Action(buttons.Completed, driver.completed_action, requires_role=Role.DRIVER),
        Action(buttons.Arrived, driver.arrived_action, requires_role=Role.DRIVER),
        Action(buttons.NoShow, driver.no_show_action, requires_role=Role.DRIVER),
        Action(buttons.NoShowYes, driver.no_show_yes_action, requires_role=Role.DRIVER),
        Action(buttons.Release, driver.release_action, requires_role=Role.DRIVER),
        # Rating and comments: the action checks the presser is the rider or the booker.
        Action(buttons.Rate, driver.rate_action),
        Action(buttons.Comment, driver.comment_action),
        Action(buttons.Assign, staff.assign_action, requires_role=Role.STAFF),
        Action(buttons.AssignTo, staff.assign_to_action, requires_role=Role.STAFF),
        # Cancelling and stopping a series: the action checks booker or rider.
        Action(buttons.CancelRide, mine.cancel_action),
        Action(buttons.CancelYes, mine.cancel_yes_action),
        Action(buttons.Keep, mine.keep_action),
        Action(buttons.StopSeries, mine.stop_series_action),
    ),
    intents=(
        Intent(
            "ride",
            (
                "我要打车",
                "打车",
                "打个车",
                "叫车",
                "叫个车",
                "约车",
                "用车",
                "坐车",
                "要车",
                "接我",
                "送我去医院",
                "去医院",
                "预约车",
                "我要坐车",
                "i need a ride",
                "need a ride",
                "book a ride",
                "ride",
                "taxi",
                "need a car",
                "pick me up",
                "take me to hospital",
                "book a car",
            ),
        ),
    ),
    jobs=jobs.JOBS,
    mydata=(privacy.mydata,),
    erasers=(privacy.erase,),
    chat_events=(staff.group_event,),
)
