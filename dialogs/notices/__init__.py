"""Community notices: staff send a notice to a community, a building or a role — now, at a
time, or every week — with a preview and the number of recipients; delivery goes
through the outbox at Telegram's limits, honours residents' muted topics and quiet
hours, survives a crash, and reports back to the author.

Read in this order: compose.py (/notice), delivery.py (sending and reports),
staff.py (/notices, cancel), resident.py (/settings, /noticeboard), scope.py.
"""

from __future__ import annotations

from dialogs.feature import Action, Command, Feature, Intent
from dialogs.notices import buttons, compose, delivery, resident, staff
from storage.data import Role

FEATURE = Feature(
    name="notices",
    flows=(compose.FLOW, resident.SETTINGS),
    commands=(
        Command(
            "notices", staff.notices_command, requires_role=Role.STAFF, description_key="commands.notices"
        ),
        Command("noticeboard", resident.board_command, description_key="commands.noticeboard"),
    ),
    actions=(
        Action(buttons.NoticeProgress, staff.progress_action, requires_role=Role.STAFF),
        Action(buttons.CancelNotice, staff.cancel_action, requires_role=Role.STAFF),
        Action(buttons.CancelNoticeYes, staff.cancel_yes_action, requires_role=Role.STAFF),
        Action(buttons.KeepNotice, staff.keep_action, requires_role=Role.STAFF),
        Action(buttons.OpenSettings, resident.open_settings_action),
        Action(buttons.OpenBoard, resident.open_board_action),
    ),
    intents=(
        Intent("notice", ("发通知", "发公告", "send a notice", "announcement")),
        Intent(
            "noticeboard",
            ("通知", "公告", "社区通知", "公告栏", "notices", "noticeboard", "community notices"),
        ),
        Intent("notice_settings", ("通知设置", "免打扰", "notice settings", "quiet hours", "mute notices")),
    ),
    jobs=delivery.JOBS,
    mydata=(resident.mydata,),
    erasers=(resident.erase,),
)
