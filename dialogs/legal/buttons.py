"""Button shapes of the legal feature (stateless actions). Every id is hostile: each
action checks that the presser is the resident, the lawyer or staff it concerns."""

from __future__ import annotations

from dialogs.buttons import ActionData


class CancelBooking(ActionData, action="legal_cancel"):
    booking: int


class CancelBookingYes(ActionData, action="legal_cancel_yes"):
    booking: int


class Reschedule(ActionData, action="legal_move"):
    booking: int


class LeaveWait(ActionData, action="legal_leave_wait"):
    wait: int


class AcceptOffer(ActionData, action="legal_offer_yes"):
    wait: int


class DeclineOffer(ActionData, action="legal_offer_no"):
    wait: int


class Rebook(ActionData, action="legal_rebook"):
    """After a lawyer cancelled: book the same request in another slot."""

    booking: int
    slot: int


class MarkDone(ActionData, action="legal_done"):
    booking: int


class MarkNoShow(ActionData, action="legal_no_show"):
    booking: int


class Note(ActionData, action="legal_note"):
    booking: int


class CancelSlot(ActionData, action="legal_slot_cancel"):
    slot: int


class CancelSlotYes(ActionData, action="legal_slot_cancel_yes"):
    slot: int


class MyBookings(ActionData, action="legal_mine"):
    """Open /mybookings from a notification."""


class BookAgain(ActionData, action="legal_book_again"):
    """Start a new booking from a notification."""
