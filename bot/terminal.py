"""The terminal chat: try all of Linli from one keyboard, as any person.

Buttons are shown as numbered options; type the number to press one. Lines that
start with ":" are terminal controls (":as staff", ":loc 30.48 114.41", ":help").
Messages Linli sends to other people (staff, drivers…) arrive through the outbox
and are printed with the recipient's name; switch to them with ":as" to answer.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from bot import numbered
from bot.app import Linli
from dialogs.i18n import guess_language
from dialogs.messages import ChatKind, Choice, Contact, Incoming, Kind, Location, Outgoing, Sender
from storage import users
from storage.demo import PEOPLE
from storage.outbox import OutboxItem

CHANNEL = "terminal"
# The one group chat the terminal has: where ride requests are posted and claimed.
GROUP = "drivers"

HELP = """Terminal controls:
  <number>            press that button of the last message
  /start /help …      commands, as in Telegram
  :as <who>           become someone else: {people}, or any new name
  :who                list the demo people
  :loc <lat> <lon>    share a location (e.g. :loc 30.4806 114.4103)
  :contact <phone>    share your phone number as a contact
  :photo [path]       send a photo (a JPEG file, or a small built-in picture)
  :sticker            send something Linli can't read
  :group              speak in (or leave) the drivers' group chat; staff bind it there
                      with /bind_driver_group, drivers claim rides there
  :quit               leave (everything is saved; run again to continue)"""


@dataclass
class Screen:
    """What each person last saw: their numbered buttons, and message ids for edits."""

    out: TextIO
    choices: dict[str, list[Choice]] = field(default_factory=dict)
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def show(self, who: str, label: str, message: Outgoing) -> str:
        message_id = str(next(self.ids))
        prefix = "✎ " if message.edit_ref else ""
        lines = [f"{label}: {prefix}{message.text}"]
        if message.place:
            p = message.place
            lines.append(f"   📍 {p.title} — {p.address} ({p.latitude:.5f}, {p.longitude:.5f})")
        if message.photo_ref:
            lines.append(f"   🖼 [photo {message.photo_ref}]")
        options = message.all_choices()
        if options:
            self.choices[who] = options
            lines.extend(f"   {line}" for line in numbered.lines(options))
        if message.ask is not None:
            hint = {
                "location": ":loc <lat> <lon>",
                "contact": ":contact <phone>",
                "photo": ":photo",
            }
            lines.append(f"   ({message.ask_label or ''} → type {hint[message.ask.value]})")
        print("\n".join(lines), file=self.out, flush=True)
        return message_id


class TerminalTransport:
    """Delivers outbox messages to terminal people by printing them."""

    def __init__(self, screen: Screen, names: Callable[[str], str]) -> None:
        self.screen = screen
        self.names = names

    async def deliver(self, item: OutboxItem) -> str | None:
        message = Outgoing.from_dict(item.payload)
        return self.screen.show(item.chat_id, f"📨 Linli → {self.names(item.chat_id)}", message)


class TerminalChat:
    def __init__(self, app: Linli, *, person: str, language: str, out: TextIO = sys.stdout) -> None:
        self.app = app
        self.person = person
        self.language = language
        self.screen = Screen(out)
        self.names: dict[str, str] = {p.external_id: p.name for p in PEOPLE}
        self.names[GROUP] = "👥 志愿司机群 / drivers' group"
        self.in_group = False

    @property
    def chat(self) -> str:
        """Where the current person is writing: the group, or their private chat."""
        return GROUP if self.in_group else self.person

    def name(self, who: str) -> str:
        return self.names.get(who, who)

    def say(self, text: str) -> None:
        print(text, file=self.screen.out, flush=True)

    async def run(self, lines: asyncio.Queue[str | None]) -> None:
        people = ", ".join(p.external_id for p in PEOPLE)
        self.say(f"Linli terminal chat. You are '{self.person}'. Type :help for controls.")
        self.say(HELP.format(people=people).splitlines()[0] + " (:help for all)")
        await self.send(self.incoming(Kind.COMMAND, command="start"))
        while (line := await lines.get()) is not None:
            line = line.strip()
            if not line:
                continue
            if line == ":quit":
                break
            incoming = self.parse(line, people)
            if incoming is not None:
                await self.send(incoming)

    def parse(self, line: str, people: str) -> Incoming | None:
        if line.startswith(":"):
            return self.control(line, people)
        if line.startswith("/"):
            command, _, args = line[1:].partition(" ")
            return self.incoming(Kind.COMMAND, command=command.lower(), text=args)
        options = self.screen.choices.get(self.chat, [])
        if (data := numbered.picked(line, [c.data for c in options])) is not None:
            return self.incoming(Kind.CHOICE, choice=data, message_ref="0")
        return self.incoming(Kind.TEXT, text=line)

    def control(self, line: str, people: str) -> Incoming | None:
        verb, _, rest = line[1:].partition(" ")
        args = rest.split()
        if verb == "as" and rest.strip():
            self.person = rest.strip()[:64]
            self.say(f"— you are now '{self.name(self.person)}' —")
            return None
        if verb == "group":
            self.in_group = not self.in_group
            where = self.name(GROUP) if self.in_group else "a private chat with Linli"
            self.say(f"— {self.name(self.person)} is now in {where} —")
            return None
        if verb == "who":
            self.say("\n".join(f"  {p.external_id:<9} {p.name}" for p in PEOPLE))
            return None
        if verb == "loc" and len(args) == 2:
            try:
                lat, lon = float(args[0]), float(args[1])
            except ValueError:
                lat, lon = 999.0, 999.0
            if -90 <= lat <= 90 and -180 <= lon <= 180:
                return self.incoming(Kind.LOCATION, location=Location(lat, lon))
            self.say("latitude must be -90…90 and longitude -180…180")
            return None
        if verb == "contact" and args:
            return self.incoming(
                Kind.CONTACT, contact=Contact(phone=" ".join(args), owner_external_id=self.person)
            )
        if verb == "photo":
            path = args[0] if args and os.path.isfile(args[0]) else "terminal-photo"
            caption = rest.removeprefix(args[0]).strip() if args and path != "terminal-photo" else rest
            return self.incoming(Kind.PHOTO, photo_ref=path, text=caption)
        if verb == "sticker":
            return self.incoming(Kind.UNSUPPORTED)
        self.say(HELP.format(people=people))
        return None

    def incoming(self, kind: Kind, **fields: object) -> Incoming:
        return Incoming(
            channel=CHANNEL,
            sender=Sender(
                external_id=self.person,
                display_name=self.name(self.person),
                language_code=self.language,
            ),
            chat_id=self.chat,
            chat_kind=ChatKind.GROUP if self.in_group else ChatKind.PRIVATE,
            kind=kind,
            update_id=None,
            **fields,  # type: ignore[arg-type]
        )

    async def send(self, incoming: Incoming) -> None:
        for reply in await self.app.handler.handle(incoming):
            label = "Linli (only you see this)" if reply.toast else "Linli"
            self.screen.show(self.chat, label, reply)


# A 1×1 JPEG: what ":photo" without a file sends.
PLACEHOLDER_JPEG = bytes.fromhex(
    "ffd8ffe000104a46494600010100000100010000ffdb004300080606070605080707070909080a0c140d0c0b0b0c1912"
    "130f141d1a1f1e1d1a1c1c20242e2720222c231c1c2837292c30313434341f27393d38323c2e333432ffc0000b080001"
    "000101011100ffc4001f0000010501010101010100000000000000000102030405060708090a0bffc400b51000020103"
    "03020403050504040000017d01020300041105122131410613516107227114328191a1082342b1c11552d1f024336272"
    "82090a161718191a25262728292a3435363738393a434445464748494a535455565758595a636465666768696a737475"
    "767778797a838485868788898a92939495969798999aa2a3a4a5a6a7a8a9aab2b3b4b5b6b7b8b9bac2c3c4c5c6c7c8c9"
    "cad2d3d4d5d6d7d8d9dae1e2e3e4e5e6e7e8e9eaf1f2f3f4f5f6f7f8f9faffda0008010100003f00fbd3ffd9"
)


async def fetch_terminal_photo(ref: str) -> bytes:
    """The terminal's photos are files on this machine (or the built-in picture)."""
    if ref == "terminal-photo":
        return PLACEHOLDER_JPEG
    return await asyncio.to_thread(Path(ref).read_bytes)


def _read_lines(queue: asyncio.Queue[str | None]) -> None:
    """stdin in a daemon thread, so the outbox keeps printing while we wait for input
    and leaving never waits for a blocked read."""
    loop = asyncio.get_running_loop()

    def pump() -> None:
        for line in sys.stdin:
            loop.call_soon_threadsafe(queue.put_nowait, line)
        loop.call_soon_threadsafe(queue.put_nowait, None)

    threading.Thread(target=pump, name="stdin", daemon=True).start()


async def run_terminal(app: Linli, *, person: str, language: str | None) -> bool:
    """The chat until :quit, end of input, or Ctrl-C; whether it was Ctrl-C.

    Ctrl-C is not left to asyncio's default (cancel the main task): a cancellation that
    lands as an awaited call completes can be absorbed on Python 3.11 (``wait_for``), and
    the chat would then wait for input forever. Here it sets an event the chat races
    against; the chat is cancelled until it ends, and the app stops in any case. A
    second Ctrl-C interrupts at once.
    """
    loop = asyncio.get_running_loop()
    interrupted = asyncio.Event()

    def on_ctrl_c() -> None:
        interrupted.set()
        loop.remove_signal_handler(signal.SIGINT)  # back to the default for a second press

    loop.add_signal_handler(signal.SIGINT, on_ctrl_c)
    chat_task = asyncio.create_task(_chat(app, person, language), name="terminal-chat")
    ctrl_c = asyncio.create_task(interrupted.wait(), name="ctrl-c")
    try:
        await asyncio.wait({chat_task, ctrl_c}, return_when=asyncio.FIRST_COMPLETED)
        while not chat_task.done():
            chat_task.cancel()
            await asyncio.wait({chat_task}, timeout=1)
    finally:
        ctrl_c.cancel()
        loop.remove_signal_handler(signal.SIGINT)
        await app.stop()
    if interrupted.is_set():
        return True
    chat_task.result()
    return False


async def _chat(app: Linli, person: str, language: str | None) -> None:
    language = language or guess_language(os.environ.get("LANG", "zh_CN").replace("_", "-"))
    chat = TerminalChat(app, person=person, language=language)
    await app.prepare()
    async with app.db.transaction() as session:
        for user in await users.list_users(session, limit=1000):
            if user.channel == CHANNEL and user.display_name:
                chat.names.setdefault(user.external_id, user.display_name)
    app.env.photos.register(CHANNEL, fetch_terminal_photo)
    await app.start({CHANNEL: TerminalTransport(chat.screen, chat.name)})
    queue: asyncio.Queue[str | None] = asyncio.Queue()
    _read_lines(queue)
    await chat.run(queue)
