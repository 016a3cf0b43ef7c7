"""The bot's profile and command menus on Telegram, by scope, kept in step with roles.

Menus (setMyCommands), each in Chinese (the default) and English:

- private chats (``all_private_chats``): the residents' commands;
- groups: nothing for members (the bot is driven by buttons there), and the group
  commands (/bind_driver_group, /bind_report_group …) for group administrators
  (``all_chat_administrators``), who are the ones who set a group up;
- the ``default`` scope is cleared, so no other chat type shows a stale menu;
- each person holding a role (staff, driver, lawyer) gets a menu for their own chat
  (``chat`` scope) with their role's commands, in their language.

Per-chat menus follow role changes without a restart: the leader compares the roles
in the database with the menus it set, every ``SYNC_EVERY`` seconds and at once when
this process commits something to the outbox (an approval always tells the person),
so a staff approval in chat or ``linli admin grant|revoke`` from another process shows
up within seconds. Nothing below bot/ knows menus exist: the channel watches the data.

Profile texts (setMyDescription / setMyShortDescription) are what a person sees on the
bot's empty chat before pressing Start: written for an elderly reader, short and plain.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from dataclasses import dataclass

from bot.app import Linli
from bot.telegram import CHANNEL
from bot.telegram.api import Scope, TelegramApi
from bot.telegram.errors import TelegramError
from dialogs.i18n import DEFAULT_LANGUAGE, LANGUAGES, t
from storage import users
from storage.data import Role

log = logging.getLogger("linli.telegram")

_COMMAND_NAME = re.compile(r"^[a-z0-9_]{1,32}$")
SYNC_EVERY = 10.0  # seconds between the leader's looks at who holds which role
RESIDENT = frozenset({Role.RESIDENT})

# Shown on the empty chat before Start (up to 512 characters) and on the bot's profile
# and in shared links (up to 120). Chinese is the default, English for English clients.
DESCRIPTIONS: dict[str, tuple[str, str]] = {
    "zh": (
        "您好！我是“邻里”社区服务小助手。\n\n"
        "👵 老人家约车去医院，志愿司机来接您\n"
        "🕳 井盖坏了、路灯不亮，拍照告诉社区\n"
        "🏠 找附近的户外劳动者驿站：喝水、充电、歇脚\n"
        "⚖️ 预约免费法律咨询\n"
        "📢 接收社区通知\n\n"
        "点下面的“开始”按钮就能用。不会打字也没关系，大部分时候点按钮就行。"
        "您的信息只用于社区服务，随时可以删除。",
        "邻里社区服务：约车看病、报修、找驿站、免费法律咨询。点“开始”就能用。",
    ),
    "en": (
        "Hello! I am Linli (邻里), your neighbourhood helper.\n\n"
        "👵 Book a ride to hospital: a volunteer driver picks you up\n"
        "🕳 Report a broken manhole cover or street light with a photo\n"
        "🏠 Find a rest station near you: water, charging, a seat\n"
        "⚖️ Book a free legal consultation\n"
        "📢 Get your community's notices\n\n"
        "Press “Start” below. Little typing needed: mostly you tap buttons. "
        "Your details serve your community only, and you can delete them at any time.",
        "Neighbourhood services: rides to hospital, repairs, rest stations, free legal advice.",
    ),
}


async def describe_bot(bot: TelegramApi) -> None:
    """setMyDescription and setMyShortDescription, default (Chinese) and per language."""
    for language, (description, short) in DESCRIPTIONS.items():
        codes = [None, language] if language == DEFAULT_LANGUAGE else [language]
        for code in codes:
            try:
                await bot.set_my_description(description, code)
                await bot.set_my_short_description(short, code)
            except TelegramError as e:  # a convenience: never a reason not to start
                log.warning("telegram: setting the bot description (%s) failed: %s", code or "default", e)


# A menu: (command, description) pairs.
Commands = list[tuple[str, str]]


def command_list(app: Linli, roles: frozenset[Role], lang: str) -> Commands:
    return [
        (name, t(lang, key)[:256])
        for name, key in app.registry.menu_commands(roles)
        if _COMMAND_NAME.match(name)
    ][:100]


def group_command_list(app: Linli, lang: str) -> Commands:
    """Commands meant for groups (binding a driver or report group), for their admins."""
    return [
        (c.name, t(lang, c.description_key)[:256])
        for c in app.registry.commands.values()
        if c.in_groups and c.description_key and _COMMAND_NAME.match(c.name)
    ][:100]


@dataclass(frozen=True, slots=True)
class _Holder:
    chat_id: int
    roles: frozenset[Role]
    language: str


class Menus:
    """Sets the menus; ``sync`` brings per-chat menus in line with the roles held."""

    def __init__(self, app: Linli, bot: TelegramApi) -> None:
        self.app = app
        self.bot = bot
        # chat id → (roles, language) of the menu last set for that chat
        self._set: dict[int, tuple[frozenset[Role], str]] = {}
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()

    def wake(self) -> None:
        self._wake.set()

    async def _call(self, what: str, commands: Commands, scope: Scope, lang: str | None) -> bool:
        try:
            if commands:
                await self.bot.set_my_commands(commands, scope, lang)
            else:
                await self.bot.delete_my_commands(scope, lang)
        except TelegramError as e:
            # A menu is a convenience: a person who never opened the chat ("chat not
            # found") or a network blip must not keep Linli from starting.
            log.warning("telegram: setMyCommands (%s) failed: %s", what, e)
            return False
        return True

    async def publish(self) -> None:
        """The menus by scope, then every role holder's own (at start-up, and by a new leader)."""
        for lang in (None, *LANGUAGES):
            language = lang or DEFAULT_LANGUAGE
            await self._call("default", [], Scope("default"), lang)
            await self._call(
                f"private {language}",
                command_list(self.app, RESIDENT, language),
                Scope("all_private_chats"),
                lang,
            )
            await self._call("groups", [], Scope("all_group_chats"), lang)
            await self._call(
                f"group admins {language}",
                group_command_list(self.app, language),
                Scope("all_chat_administrators"),
                lang,
            )
        self._set.clear()
        await self.sync()

    async def sync(self) -> int:
        """Set or clear the per-chat menus whose holder's roles or language changed;
        returns how many chats were changed."""
        async with self._lock:
            holders = {
                h.chat_id: h
                for h in await self._holders()
                # A role with no commands of its own (a driver's) needs no menu of its own.
                if self._menu(h) != command_list(self.app, RESIDENT, h.language)
            }
            changed = 0
            for chat_id, holder in holders.items():
                wanted = (holder.roles, holder.language)
                if self._set.get(chat_id) == wanted:
                    continue
                scope = Scope("chat", chat_id)
                if await self._call(f"chat {chat_id}", self._menu(holder), scope, None):
                    self._set[chat_id] = wanted
                    changed += 1
            for chat_id in [c for c in self._set if c not in holders]:
                # The role was revoked (or the person left): back to the residents' menu.
                if await self._call(f"chat {chat_id}", [], Scope("chat", chat_id), None):
                    del self._set[chat_id]
                    changed += 1
            if changed:
                log.info("telegram: command menus updated for %d chats", changed)
            return changed

    def _menu(self, holder: _Holder) -> Commands:
        return command_list(self.app, holder.roles | RESIDENT, holder.language)

    async def _holders(self) -> list[_Holder]:
        """Everyone on Telegram holding a role beyond resident, and LINLI_ADMINS who
        have not written yet (their role comes with their first message)."""
        found: dict[str, _Holder] = {}
        async with self.app.db.transaction() as session:
            for role in (Role.STAFF, Role.DRIVER, Role.LAWYER):
                for user in await users.users_with_role(session, role):
                    if user.channel == CHANNEL and not user.blocked and user.chat_id.lstrip("-").isdigit():
                        found[user.external_id] = _Holder(int(user.chat_id), user.roles, user.language)
            for admin in self.app.settings.admin_ids:
                if (
                    admin not in found
                    and await users.find_by_external(session, channel=CHANNEL, external_id=admin) is None
                ):
                    found[admin] = _Holder(int(admin), frozenset({Role.STAFF}), DEFAULT_LANGUAGE)
        return list(found.values())

    async def follow(self, stop: asyncio.Event) -> None:
        """While this process leads: keep the per-chat menus in step with the roles."""
        while not stop.is_set():
            await self.app.leads.wait()
            try:
                await self.sync()
            except Exception as e:  # the database or Telegram is away: next round
                log.warning("telegram: command menu sync failed: %s", e)
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), SYNC_EVERY)
