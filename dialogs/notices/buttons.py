"""The notices feature's stateless buttons, declared once (see dialogs/buttons.py)."""

from __future__ import annotations

from dialogs.buttons import ActionData


class CancelNotice(ActionData, action="notice_cancel"):
    notice: int


class CancelNoticeYes(ActionData, action="notice_cancel_yes"):
    notice: int


class KeepNotice(ActionData, action="notice_keep"):
    notice: int


class NoticeProgress(ActionData, action="notice_progress"):
    notice: int


class OpenSettings(ActionData, action="notice_settings"):
    pass


class OpenBoard(ActionData, action="notice_board"):
    pass
