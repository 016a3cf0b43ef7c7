"""What each `linli` sub-command does."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import os
import sys
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession

from bot.app import Linli
from bot.settings import Settings
from storage import audit, communities, demo, notices, schema, stations, stations_io, users
from storage.data import Role, UserData
from storage.engine import Database


async def dispatch(args: argparse.Namespace, settings: Settings) -> int:
    if args.command == "run":
        if settings.wechat_enabled:
            return await _run_wechat(settings)
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
        if args.command == "admin" and args.admin_command == "poster":
            return await _poster(db, args, settings)
        if args.command == "admin":
            return await _admin(db, args, frozenset(settings.admin_ids))
        if args.command == "legal":
            return await _legal_import(db, args)
        if args.command == "stations":
            return await _stations(db, args)
    finally:
        await db.dispose()
    return 2


async def _run_wechat(settings: Settings) -> int:
    """WeChat alone, or WeChat beside Telegram in one process (one outbox sender for both)."""
    from bot.wechat.server import run_wechat, serve, stop_serving

    app = Linli(settings)
    if settings.telegram_token is None:
        await run_wechat(app)
        return 0
    from bot.telegram.runner import run_telegram

    await app.prepare()
    channel, runner = await serve(app)
    try:
        await run_telegram(app)
    finally:
        await stop_serving(channel, runner)
    return 0


async def _chat(settings: Settings, *, person: str, language: str | None) -> int:
    from bot.terminal import run_terminal

    if await run_terminal(Linli(settings), person=person, language=language):
        print(file=sys.stderr)  # Ctrl-C: end the line the ^C was echoed on
        return 130
    return 0


async def _db(db: Database, args: argparse.Namespace) -> int:
    if args.db_command == "upgrade":
        await schema.upgrade(db)
    elif args.db_command == "downgrade":
        await schema.downgrade(db, args.revision)
    print(f"schema revision: {await schema.current(db) or '(empty)'}")
    return 0


def _operator() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (containers)
        return f"uid {os.getuid()}"


async def _admin(db: Database, args: argparse.Namespace, settings_admins: frozenset[str]) -> int:
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
        # Who ran it, for the record; a revocation of staff also outranks LINLI_ADMINS.
        await audit.record(
            session,
            actor_user_id=None,
            action=f"admin_{args.admin_command}:{role.value}",
            target=f"user:{user.id}",
            detail=f"by {_operator()} with linli admin{'' if changed else ' (no change)'}",
        )
        print(
            f"{user.display_name or user.external_id}: {args.admin_command} {role.value}"
            f"{'' if changed else ' (no change)'}"
        )
        if args.admin_command == "revoke" and role is Role.STAFF and user.external_id in settings_admins:
            print("note: listed in LINLI_ADMINS, but this revocation is recorded and wins")
        return 0


async def _poster(db: Database, args: argparse.Namespace, settings: Settings) -> int:
    """A community poster: the signed deep link that preselects the community during
    onboarding, as text and as a QR code PNG, and the link that adds the bot to a group."""
    import segno

    from bot import deeplinks

    await schema.upgrade(db)
    async with db.transaction() as session:
        if args.community.isdigit():
            found = await communities.get_community(session, int(args.community))
            matches = [found] if found is not None else []
        else:
            everyone = await communities.list_communities(session)
            matches = [
                c for c in everyone if c.name == args.community
            ] or await communities.search_communities(session, args.community)
    if len(matches) != 1:
        names = "、".join(c.name for c in matches) or "none"
        print(f"{len(matches)} communities match {args.community!r} ({names}); give the exact name or the id")
        return 1
    community = matches[0]
    try:
        key = deeplinks.link_key(settings)
    except ValueError as e:
        print(e)
        return 1
    username = args.bot or await _bot_username(settings)
    if username is None:
        print("cannot ask Telegram for the bot's username: pass --bot USERNAME")
        return 1
    link = deeplinks.start_link(username.lstrip("@"), deeplinks.community_payload(key, community.id))
    path = Path(args.output or f"poster-{community.id}.png")
    qr = segno.make(link, error="m")  # medium error correction: survives a scuffed print
    await asyncio.to_thread(qr.save, str(path), kind="png", scale=12, border=4)
    print(f"{community.name}: {link}")
    print(f"QR code: {path}")
    print(f"add the bot to a driver group: {deeplinks.startgroup_link(username.lstrip('@'))}")
    if settings.link_secret is None:
        print("note: signed with a key derived from the bot token; set LINLI_LINK_SECRET and keep it")
    return 0


async def _bot_username(settings: Settings) -> str | None:
    if settings.telegram_token is None:
        return None
    from bot.telegram.runner import make_bot

    bot = make_bot(settings)
    try:
        me = await bot.get_me()
    except Exception as e:  # offline, wrong token: the operator can pass --bot
        logging.getLogger("linli").warning("getMe failed: %s", e)
        return None
    finally:
        await bot.close()
    return me.username


async def _legal_import(db: Database, args: argparse.Namespace) -> int:
    """Check a file of FAQ entries and store them: same id replaces a shipped entry."""
    from dialogs.legal import kb

    path = Path(args.file)
    try:
        text = await asyncio.to_thread(path.read_text, "utf-8")
        entries = kb.parse_file(text, name=path.name)
    except OSError as exc:
        print(f"cannot read {path}: {exc}")
        return 1
    except kb.InvalidEntry as exc:
        print(f"{path} was not imported:\n{exc}")
        return 1
    shipped = {e.id for e in kb.shipped()}
    replaced = sum(e.id in shipped for e in entries)
    if args.dry_run:
        print(f"{path}: {len(entries)} entries are valid ({replaced} would replace shipped ones)")
        return 0
    await schema.upgrade(db)
    async with db.transaction() as session:
        await kb.save(session, entries)
    print(f"imported {len(entries)} entries ({replaced} replace shipped ones, {len(entries) - replaced} new)")
    return 0


async def _stations(db: Database, args: argparse.Namespace) -> int:
    await schema.upgrade(db)
    if args.stations_command == "export":
        async with db.transaction() as session:
            found = await stations.all_stations(session)
        text = stations_io.write_geojson(found) if args.format == "geojson" else stations_io.write_csv(found)
        if args.output == "-":
            sys.stdout.write(text)
        else:
            await asyncio.to_thread(Path(args.output).write_text, text, encoding="utf-8")
            print(f"exported {len(found)} stations to {args.output}", file=sys.stderr)
        return 0
    path = Path(args.file)
    try:
        text = await asyncio.to_thread(path.read_text, encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        print(f"{path}: cannot read the file ({e})", file=sys.stderr)
        return 1
    try:
        result = stations_io.read(text, name=path.name)
    except stations_io.FileError as e:
        print(f"{path}: {e}; nothing imported", file=sys.stderr)
        return 1
    if result.errors:
        for error in result.errors:
            print(f"{path}:{error.line}: {error.reason}", file=sys.stderr)
        print(
            f"{len(result.errors)} bad rows, {len(result.stations)} good; nothing imported", file=sys.stderr
        )
        return 1
    if args.dry_run:
        print(f"{path}: {len(result.stations)} stations, all valid (dry run: nothing imported)")
        return 0
    async with db.transaction() as session:
        done = await stations.upsert_many(session, result.stations)
    print(f"{path}: {done.created} stations added, {done.updated} updated")
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
