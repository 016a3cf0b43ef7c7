"""Catalogs: every key in both languages, same placeholders, every key the code uses exists."""

from __future__ import annotations

import re
import string
from pathlib import Path

import pytest

from dialogs.applications.lawyer import SPECIALTIES
from dialogs.features import FEATURES
from dialogs.i18n import LANGUAGES, catalog, guess_language, t
from handlers.registry import Registry
from storage.data import Role

ROOT = Path(__file__).resolve().parents[2]
LITERAL_KEY = re.compile(
    r"""(?:\bt|tr|Retry|button|toast|text_step)\(\s*(?:[a-z_.]+,\s*)?"([a-z_]+\.[a-z_.]+)\""""
)
# Keys handed over by name: NotAllowed(key=...), text_step(error=...), the question of a text_step.
NAMED_KEY = re.compile(r"""\b(?:key|error)="([a-z_]+\.[a-z_.]+)\"""")
TEXT_STEP_QUESTION = re.compile(r"""text_step\(\s*"[a-z_]+",\s*"([a-z_]+\.[a-z_.]+)\"""")


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
            source = path.read_text("utf-8")
            for pattern in (LITERAL_KEY, NAMED_KEY, TEXT_STEP_QUESTION):
                used |= set(pattern.findall(source))
    used |= {f.menu_key for f in Registry.build(FEATURES).flows.values() if f.menu_key}
    assert len(used) > 50  # the pattern really finds the keys
    missing = sorted(k for k in used if k not in catalog("zh"))
    assert missing == []


def test_every_computed_key_exists() -> None:
    registry = Registry.build(FEATURES)
    keys = [f"roles.{r.value}" for r in Role]
    keys += [f"language.name_{lang}" for lang in LANGUAGES]
    keys += [f"apply.specialty_{s}" for s in SPECIALTIES]
    keys += [f"apply.status_{s}" for s in ("pending", "approved", "rejected")]
    keys += [f"apply.{o}_{r}" for o in ("approved", "rejected") for r in ("driver", "lawyer")]
    keys += [f"apply.already_{r}" for r in ("driver", "lawyer")]
    keys += [key for roles in ({Role.STAFF},) for _, key in registry.menu_commands(frozenset(roles))]
    keys += [
        f"services.{i.target}"
        for i in registry.intents
        if i.target not in registry.commands and i.target not in registry.flows
    ]
    for lang in LANGUAGES:
        for key in keys:
            assert t(lang, key), key


def test_language_guess_from_client() -> None:
    assert guess_language("en-GB") == "en"
    assert guess_language("zh-hans") == "zh"
    assert guess_language(None) == "zh"
    assert guess_language("ru") == "zh"
