"""What each `linli` sub-command does."""

from __future__ import annotations

import argparse
import logging
import os

from sqlalchemy.ext.asyncio import AsyncSession

from bot.app import Linli
from bot.settings import Settings
from storage import communities, demo, notices, schema, users
from storage.data import Role, UserData
from storage.engine import Database


async def dispatch(args: argparse.Namespace, settings: Settings) -> int:
    if args.command == "run":
        if settings.telegram_token is None:
            logging.getLogger("linli").info("no LINLI_TELEGRAM_TOKEN: starting the terminal chat")
            return await _chat(settings, person="me", language=None)
        from bot.telegram.runner import run_telegram

        await run_telegram(Linli(settings))
        return 0
    if args.command == "chat":
        return await _chat(settings, person=args.person, language=args.lang)
    db = Database(settings.database_url)
    try:
        if args.command == "db":
            return await _db(db, args)
        if args.command == "demo-data":
            await schema.upgrade(db)
            async with db.transaction() as session:
                await demo.load(session)
            print("demo data loaded")
            return 0
        if args.command == "admin":
            return await _admin(db, args)
    finally:
        await db.dispose()
    return 2


async def _chat(settings: Settings, *, person: str, language: str | None) -> int:
    from bot.terminal import run_terminal

    if "LINLI_LOG_LEVEL" not in os.environ:
        # The chat shares the terminal with the logs: only problems, unless asked.
        logging.getLogger().setLevel(logging.WARNING)

    await run_terminal(Linli(settings), person=person, language=language)
    return 0


async def _db(db: Database, args: argparse.Namespace) -> int:
    if args.db_command == "upgrade":
        await schema.upgrade(db)
    elif args.db_command == "downgrade":
        await schema.downgrade(db, args.revision)
    print(f"schema revision: {await schema.current(db) or '(empty)'}")
    return 0


async def _admin(db: Database, args: argparse.Namespace) -> int:
    await schema.upgrade(db)
    async with db.transaction() as session:
        if args.admin_command == "users":
            found = (
                await users.find_users(session, args.query) if args.query else await users.list_users(session)
            )
            for u in found:
                roles = ",".join(sorted(r.value for r in u.roles)) or "resident"
                who = f"{u.channel}:{u.external_id}"
                print(f"{u.id:>5}  {who:<24} {u.display_name or '—':<12} {roles}")
            return 0
        matches = await users.find_users(session, args.user)
        exact = [u for u in matches if args.user in (str(u.id), u.external_id)]
        if len(exact) == 1:
            matches = exact
        if len(matches) != 1:
            hint = "use the Linli id from `linli admin users`"
            print(f"{len(matches)} people match {args.user!r}; {hint}")
            return 1
        if args.admin_command in ("scope", "unscope"):
            return await _scope(session, matches[0], args)
        user, role = matches[0], Role(args.role)
        if args.admin_command == "grant":
            changed = await users.grant_role(session, user.id, role)
        else:
            changed = await users.revoke_role(session, user.id, role)
        print(
            f"{user.display_name or user.external_id}: {args.admin_command} {role.value}"
            f"{'' if changed else ' (no change)'}"
        )
        return 0


async def _scope(session: AsyncSession, user: UserData, args: argparse.Namespace) -> int:
    """Notices: which communities a staff member may send to (``all``: city-wide)."""
    community_id: int | None = None
    if args.community != "all":
        found = [
            c
            for c in await communities.search_communities(session, args.community)
            if c.name == args.community
        ]
        if len(found) != 1:
            print(f"no community named {args.community!r}; `all` means city-wide")
            return 1
        community_id = found[0].id
    if args.admin_command == "scope":
        if not user.has(Role.STAFF):
            print(f"{user.display_name or user.external_id} is not staff; grant the role first")
            return 1
        changed = await notices.grant_scope(session, user.id, community_id)
    else:
        changed = await notices.revoke_scope(session, user.id, community_id)
    who = user.display_name or user.external_id
    print(f"{who}: {args.admin_command} {args.community}{'' if changed else ' (no change)'}")
    return 0
