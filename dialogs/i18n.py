"""Message catalogs (zh, en). Every user-visible string lives in a catalog beside its code.

The engine's shared strings are in dialogs/zh.toml and dialogs/en.toml; each feature
package keeps its own (dialogs/rides/zh.toml…), so features never edit one shared
file. All files of a language are merged and a key defined twice is an error. Keys
are dotted TOML paths ("onboarding.ask_consent"); values use str.format fields.
"""

from __future__ import annotations

import tomllib
from functools import cache
from importlib import resources
from importlib.abc import Traversable
from typing import Any

from storage.data import DEFAULT_LANGUAGE, LANGUAGES, guess_language

__all__ = ["DEFAULT_LANGUAGE", "LANGUAGES", "Tr", "catalog", "guess_language", "t"]


def _flatten(prefix: str, node: dict[str, Any], out: dict[str, str]) -> None:
    for key, value in node.items():
        full = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict):
            _flatten(full, value, out)
        else:
            out[full] = str(value)


def catalog_files(lang: str) -> list[Traversable]:
    """dialogs/<lang>.toml, then every feature package's <lang>.toml, by package name."""
    root = resources.files("dialogs")
    files = [root.joinpath(f"{lang}.toml")]
    for entry in sorted(root.iterdir(), key=lambda e: e.name):
        candidate = entry.joinpath(f"{lang}.toml")
        if entry.is_dir() and candidate.is_file():
            files.append(candidate)
    return files


@cache  # the files ship with the code and never change while it runs
def catalog(lang: str) -> dict[str, str]:
    merged: dict[str, str] = {}
    for entry in catalog_files(lang):
        flat: dict[str, str] = {}
        _flatten("", tomllib.loads(entry.read_text("utf-8")), flat)
        twice = merged.keys() & flat.keys()
        if twice:
            raise ValueError(f"{lang}: {entry} defines keys again: {sorted(twice)}")
        merged.update(flat)
    return merged


def t(lang: str, key: str, **fields: Any) -> str:
    """Translate ``key``; a missing key is a bug, so it fails loudly in tests."""
    template = catalog(lang if lang in LANGUAGES else DEFAULT_LANGUAGE)[key]
    return template.format(**fields) if fields else template


class Tr:
    """A translator bound to one language: ``tr("rides.claim")``; ``tr.lang`` says which."""

    __slots__ = ("lang",)

    def __init__(self, lang: str) -> None:
        self.lang = lang if lang in LANGUAGES else DEFAULT_LANGUAGE

    def __call__(self, key: str, **fields: Any) -> str:
        return t(self.lang, key, **fields)
