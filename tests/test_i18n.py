"""Catalogs: every key in both languages, same placeholders, every key the code uses exists."""

from __future__ import annotations

import re
import string
from pathlib import Path

import pytest

from dialogs.apply_lawyer import SPECIALTIES
from dialogs.i18n import LANGUAGES, catalog, guess_language, t
from dialogs.intents import INTENTS
from handlers.setup import build_registry
from storage.data import Role

ROOT = Path(__file__).resolve().parents[1]
LITERAL_KEY = re.compile(r"""(?:\bt|tr|Retry|button)\(\s*(?:[a-z_.]+,\s*)?"([a-z_]+\.[a-z_.]+)\"""")


def _fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def test_same_keys_in_every_language() -> None:
    zh, en = set(catalog("zh")), set(catalog("en"))
    assert zh - en == set(), "keys only in Chinese"
    assert en - zh == set(), "keys only in English"


@pytest.mark.parametrize("key", sorted(catalog("zh")))
def test_same_placeholders(key: str) -> None:
    assert _fields(catalog("zh")[key]) == _fields(catalog("en")[key])


def test_every_literal_key_in_code_exists() -> None:
    used: set[str] = set()
    for folder in ("dialogs", "handlers", "bot", "scheduler"):
        for path in (ROOT / folder).rglob("*.py"):
            used |= set(LITERAL_KEY.findall(path.read_text("utf-8")))
    used |= {f.menu_key for f in build_registry().flows.values() if f.menu_key}
    assert len(used) > 50  # the pattern really finds the keys
    missing = sorted(k for k in used if k not in catalog("zh"))
    assert missing == []


def test_every_computed_key_exists() -> None:
    registry = build_registry()
    keys = [f"roles.{r.value}" for r in Role]
    keys += [f"language.name_{lang}" for lang in LANGUAGES]
    keys += [f"apply.specialty_{s}" for s in SPECIALTIES]
    keys += [f"apply.status_{s}" for s in ("pending", "approved", "rejected")]
    keys += [f"apply.{o}_{r}" for o in ("approved", "rejected") for r in ("driver", "lawyer")]
    keys += [f"apply.already_{r}" for r in ("driver", "lawyer")]
    keys += [key for roles in ({Role.STAFF},) for _, key in registry.menu_commands(frozenset(roles))]
    keys += [f"services.{i.target}" for i in INTENTS if i.target not in registry.commands]
    for lang in LANGUAGES:
        for key in keys:
            assert t(lang, key), key


def test_language_guess_from_client() -> None:
    assert guess_language("en-GB") == "en"
    assert guess_language("zh-hans") == "zh"
    assert guess_language(None) == "zh"
    assert guess_language("ru") == "zh"
