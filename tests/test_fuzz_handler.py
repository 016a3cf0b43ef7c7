"""Property-based fuzzing of ``Handler.handle``: random people send random messages.

A handful of people with different roles (the demo people on the terminal channel,
fresh Telegram users, the Telegram admin from LINLI_ADMINS) send random sequences of
texts, commands, button presses (on-screen, stale and forged), locations, contacts,
photos and stickers, mostly in private chats and sometimes in a group. One database
is used per test function, so people accumulate state across examples as real users
do. After every single message these properties are checked:

* ``handle()`` never raises, and never answers with the generic error message (which
  would mean an internal exception was swallowed);
* every private message gets at least one reply; every reply (and every message queued
  in the outbox) has a non-empty text of at most 4096 characters, non-empty button
  labels and button data of at most 64 bytes, and survives the outbox JSON round trip;
* no privileged action succeeds for a role that lacks it: only staff decide
  applications, driver/lawyer roles come from an approved application (or the demo
  data), staff from the demo data or LINLI_ADMINS; a forged ``a:approve``/``a:reject``
  from anyone else leaves an ``audit_log`` row with ``allowed=False`` and changes no
  application, while the same press from staff on a pending application decides it;
* conversation state is valid JSON and names a registered flow and one of its steps
  (history included), or is empty;
* a redelivered update (same update id) is answered with nothing and changes nothing.

``LINLI_FUZZ_EXAMPLES`` sets the number of sequences for the SQLite test (default 80;
the PostgreSQL test runs a fifth of that), ``LINLI_FUZZ_STEPS`` the longest sequence
(default 25).

Input families that trigger known application bugs are generated only when
``LINLI_FUZZ_KNOWN_BUGS=1``; each bug has its own strict-xfail regression test at the
end of this file, so fixing one turns its test into an XPASS failure: then remove the
mark and the family's entry in ``KNOWN_BUGS``.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import pytest_asyncio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from dialogs.core import HISTORY, MAX_BUTTON_DATA, Flow
from dialogs.i18n import LANGUAGES, t
from dialogs.lawyer_specialties import SPECIALTIES  # type: ignore[import-not-found]
from dialogs.messages import (
    ChatKind,
    Contact,
    Incoming,
    Kind,
    Location,
    Outgoing,
    Sender,
)
from storage import demo
from storage.data import Role
from storage.engine import Database
from storage.models import AuditEntry, Conversation, OutboxMessage, RoleApplication, User
from storage.schema import create_schema
from tests.conftest import STAFF_ID
from tests.kit import Kit, Person
