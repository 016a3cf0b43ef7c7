"""Every button of the report service, declared once (see dialogs/buttons.py).

Report and user ids in them are guessable and hostile: each action checks on the
server who is pressing (staff, the reporter, a follower) before it acts.
"""

from __future__ import annotations

from dialogs.buttons import ActionData


class View(ActionData, action="report_view"):
    report: int


class Take(ActionData, action="report_take"):
    report: int


class Assign(ActionData, action="report_assign"):
    report: int


class AssignTo(ActionData, action="report_assign_to"):
    report: int
    user: int


class Start(ActionData, action="report_start"):
    report: int


class Resolve(ActionData, action="report_resolve"):
    report: int


class Reject(ActionData, action="report_reject"):
    report: int


class Duplicate(ActionData, action="report_dup"):
    report: int


class Who(ActionData, action="report_who"):
    report: int


class Confirm(ActionData, action="report_confirm"):
    report: int


class Reopen(ActionData, action="report_reopen"):
    report: int


class Rate(ActionData, action="report_rate"):
    report: int
    stars: int


class Filter(ActionData, action="report_filter"):
    what: str
