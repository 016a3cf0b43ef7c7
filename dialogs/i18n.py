"""Message catalogs (zh, en). Every user-visible string lives in dialogs/locales/<lang>/*.toml.

Each feature keeps its own file (core.toml, rides.toml…) so features never edit one
shared file; the files of a language are merged and a key defined twice is an error.
Keys are dotted TOML paths ("onboarding.ask_consent"); values use str.format fields.
"""

from __future__ import annotations

import tomllib
from functools import cache
from importlib import resources
from typing import Any

LANGUAGES = ("zh", "en")
DEFAULT_LANGUAGE = "zh"


def _flatten(prefix: str, node: dict[str, Any], out: dict[str, str]) -> None:
    for key, value in node.items():
        full = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict):
            _flatten(full, value, out)
        else:
            out[full] = str(value)


@cache
def catalog(lang: str) -> dict[str, str]:
    folder = resources.files("dialogs").joinpath("locales", lang)
    merged: dict[str, str] = {}
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".toml"):
            continue
        flat: dict[str, str] = {}
        _flatten("", tomllib.loads(entry.read_text("utf-8")), flat)
        twice = merged.keys() & flat.keys()
        if twice:
            raise ValueError(f"{lang}/{entry.name} defines keys again: {sorted(twice)}")
        merged.update(flat)
    return merged


def t(lang: str, key: str, **fields: Any) -> str:
    """Translate ``key``; a missing key is a bug, so it fails loudly in tests."""
    template = catalog(lang if lang in LANGUAGES else DEFAULT_LANGUAGE)[key]
    return template.format(**fields) if fields else template


def guess_language(client_language: str | None) -> str:
    """Chinese unless the client says English (Telegram's language_code, e.g. "en-GB")."""
    if client_language and client_language.lower().startswith("en"):
        return "en"
    return DEFAULT_LANGUAGE
