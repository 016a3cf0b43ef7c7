"""The stateless buttons of rest stations, declared once (see dialogs/buttons.py).

A station id in them is hostile: showing a station is open to everyone (it is public
information), managing one needs the staff role, checked on every press.
"""

from __future__ import annotations

from dialogs.buttons import ActionData


class Show(ActionData, action="station_show"):
    """The station's map pin, details and navigation links."""

    station: int


class Manage(ActionData, action="station_manage"):
    """Staff: close or reopen the station, or change its hours."""

    station: int
