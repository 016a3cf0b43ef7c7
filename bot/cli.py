"""The `linli` command."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence

from bot import logs
from bot.settings import Settings


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="linli", description="Linli (邻里) neighbourhood chatbot")
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser(
        "run",
        help="Telegram (webhook if LINLI_WEBHOOK_URL is set, else long polling) if "
        "LINLI_TELEGRAM_TOKEN is set, else the terminal chat",
    )

    chat = sub.add_parser("chat", help="the terminal chat; act as any person")
    chat.add_argument(
        "--as", dest="person", default="me", help="who you are (demo: resident, staff, driver…)"
    )
    chat.add_argument("--lang", choices=["zh", "en"], default=None, help="language of a new person")

    db = sub.add_parser("db", help="database schema (Alembic)")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    db_sub.add_parser("upgrade", help="migrate to the newest schema")
    down = db_sub.add_parser("downgrade", help="migrate down to a revision")
    down.add_argument("revision")
    db_sub.add_parser("current", help="show the current revision")

    sub.add_parser("demo-data", help="load the demo communities, people and sample stations (idempotent)")

    stations = sub.add_parser("stations", help="rest stations: import and export (CSV or GeoJSON)")
    stations_sub = stations.add_subparsers(dest="stations_command", required=True)
    imp = stations_sub.add_parser(
        "import", help="add or update stations from a file; any bad row and nothing is imported"
    )
    imp.add_argument("file", help="a .csv or .geojson file (WGS-84 coordinates)")
    imp.add_argument("--dry-run", action="store_true", help="check the file, change nothing")
    exp = stations_sub.add_parser("export", help="write every station (re-importable)")
    exp.add_argument("--format", choices=["csv", "geojson"], default="csv")
    exp.add_argument("-o", "--output", default="-", help="file to write (default: standard output)")

    admin = sub.add_parser("admin", help="bootstrap tasks")
    admin_sub = admin.add_subparsers(dest="admin_command", required=True)
    grant = admin_sub.add_parser("grant", help="give a person a role")
    grant.add_argument("user", help="Linli id, Telegram id or name")
    grant.add_argument("role", choices=["staff", "driver", "lawyer", "gig_worker"])
    revoke = admin_sub.add_parser("revoke", help="take a role away")
    revoke.add_argument("user")
    revoke.add_argument("role", choices=["staff", "driver", "lawyer", "gig_worker"])
    scope = admin_sub.add_parser("scope", help="make a staff member responsible for a community's notices")
    scope.add_argument("user", help="Linli id, Telegram id or name")
    scope.add_argument("community", help="community name, or 'all' for city-wide")
    unscope = admin_sub.add_parser("unscope", help="take a community's notices away from a staff member")
    unscope.add_argument("user")
    unscope.add_argument("community", help="community name, or 'all'")
    poster = admin_sub.add_parser(
        "poster", help="a community poster's deep link (t.me/<bot>?start=...) and its QR code"
    )
    poster.add_argument("community", help="community name (or its Linli id)")
    poster.add_argument("-o", "--output", help="QR code PNG to write (default: poster-<community id>.png)")
    poster.add_argument("--bot", help="the bot's username (default: asked from Telegram with getMe)")
    users = admin_sub.add_parser("users", help="list people (optionally matching a query)")
    users.add_argument("query", nargs="?", default="")

    legal = sub.add_parser("legal", help="the legal FAQ")
    legal_sub = legal.add_subparsers(dest="legal_command", required=True)
    imp = legal_sub.add_parser("import", help="add or replace FAQ entries from a TOML or JSON file")
    imp.add_argument("file", help="entries shaped like dialogs/legal/knowledge.toml")
    imp.add_argument("--dry-run", action="store_true", help="only check the file")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    settings = Settings()
    level = settings.log_level
    if _is_terminal_chat(args, settings) and "LINLI_LOG_LEVEL" not in os.environ:
        # The chat shares the terminal with the logs: only problems, unless asked.
        level = "WARNING"
    logs.setup(level, settings.log_format)
    from bot.telegram.errors import Unauthorized

    try:
        from bot import commands  # the heavy imports: Ctrl-C during them is a Ctrl-C too

        return asyncio.run(commands.dispatch(args, settings))
    except KeyboardInterrupt:
        # Ctrl-C: everything is saved as it goes; a traceback would only alarm.
        print(file=sys.stderr)
        return 130
    except Unauthorized as e:
        print(
            f"Telegram refused the bot token ({e.message}). Check LINLI_TELEGRAM_TOKEN: "
            "it is the token @BotFather gave, like 123456789:AA…",
            file=sys.stderr,
        )
        return 2


def _is_terminal_chat(args: argparse.Namespace, settings: Settings) -> bool:
    return args.command == "chat" or (args.command == "run" and settings.telegram_token is None)


if __name__ == "__main__":
    sys.exit(main())
