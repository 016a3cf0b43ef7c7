"""Every button of the ride service, declared once (see dialogs/buttons.py).

Ride and driver ids in them are guessable and hostile: each action checks on the
server that the presser may act on that ride.
"""

from __future__ import annotations

from dialogs.buttons import ActionData


class Claim(ActionData, action="claim"):
    ride: int


class OnWay(ActionData, action="ride_on_way"):
    ride: int


class Arrived(ActionData, action="ride_arrived"):
    ride: int


class NoShowYes(ActionData, action="ride_no_show_yes"):
    ride: int


class PickedUp(ActionData, action="ride_picked_up"):
    ride: int


class Completed(ActionData, action="ride_completed"):
    ride: int


class NoShow(ActionData, action="ride_no_show"):
    ride: int


class Release(ActionData, action="ride_release"):
    ride: int


class Rate(ActionData, action="ride_rate"):
    ride: int
    stars: int


class Comment(ActionData, action="ride_comment"):
    ride: int
    choice: str = ""  # "no": no comment


class Assign(ActionData, action="ride_assign"):
    ride: int


class AssignTo(ActionData, action="ride_assign_to"):
    ride: int
    driver: int


class CancelRide(ActionData, action="ride_cancel"):
    ride: int


class CancelYes(ActionData, action="ride_cancel_yes"):
    ride: int


class Keep(ActionData, action="ride_keep"):
    ride: int


class StopSeries(ActionData, action="series_stop"):
    series: int
