"""The legal FAQ: the shipped knowledge base is complete and valid, matching finds the
right entry for paraphrases nobody wrote into it, triage catches urgent words (and not
everyday ones), and staff's import file is checked before anything is stored."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from bot.cli import main
from dialogs.legal import kb, matching
from dialogs.legal.triage import Urgent, triage

ROOT = Path(__file__).resolve().parents[2]
QUESTIONS = ROOT / "bench" / "legal_faq_questions.toml"


def _questions() -> list[tuple[str, str]]:
    return [(q, e) for q, e in tomllib.loads(QUESTIONS.read_text("utf-8"))["questions"]]


def test_knowledge_base_is_complete() -> None:
    entries = kb.shipped()
    assert len(entries) >= 40
    assert {e.topic for e in entries} == set(kb.TOPICS)  # every topic the issue lists
    for entry in entries:
        assert "第" in entry.law_zh and "art" in entry.law_en, entry.id  # act and article
        assert entry.q_zh and entry.q_en and entry.answer_zh and entry.answer_en


def test_paraphrases_are_not_copies_and_find_their_entry() -> None:
    questions = _questions()
    entries = kb.shipped()
    variants = {v for e in entries for v in (*e.q_zh, *e.q_en, *e.keywords)}
    assert len(questions) >= 60
    assert not [q for q, _ in questions if q in variants]
    ids = {e.id for e in entries}
    assert {e for _, e in questions} <= ids
    index = matching.Index(entries)
    top3 = sum(want in [h.entry.id for h in index.search(q)] for q, want in questions)
    assert top3 / len(questions) >= 0.9


def test_chatter_is_below_the_threshold() -> None:
    index = matching.Index(kb.shipped())
    for text in ("你好", "hello", "今天天气不错", "abc", "？？？"):
        hits = index.search(text)
        assert not hits or hits[0].score < matching.THRESHOLD, (text, hits[0])


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("我老公打我", Urgent.VIOLENCE),
        ("他威胁要杀了我全家", Urgent.VIOLENCE),
        ("my husband beats me", Urgent.VIOLENCE),
        ("我不想活了", Urgent.SELF_HARM),
        ("I want to kill myself", Urgent.SELF_HARM),
        ("打工三个月老板不给钱", None),
        ("my boss has not paid my wages", None),
        ("工资死活不发", None),
    ],
)
def test_triage(text: str, kind: Urgent | None) -> None:
    assert triage(text) is kind


def test_import_checks_then_replaces_and_adds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LINLI_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.chdir(tmp_path)
    bad = tmp_path / "bad.toml"
    bad.write_text('[[entry]]\nid = "Bad Id"\ntopic = "space"\n', "utf-8")
    assert main(["legal", "import", str(bad)]) == 1
    assert "not imported" in capsys.readouterr().out
    good = tmp_path / "faq.toml"
    good.write_text(
        """
[[entry]]
id = "wage_arrears"
topic = "wages"
q_zh = ["拖欠工资怎么办（新版）"]
q_en = ["Unpaid wages (new)"]
answer_zh = "新的回答"
answer_en = "A new answer"
law_zh = "《劳动合同法》第三十条"
law_en = "Labour Contract Law art. 30"
where = ["12333"]

[[entry]]
id = "gig_new"
topic = "wages"
q_zh = ["外卖站点押工资"]
q_en = ["The delivery station withholds pay"]
answer_zh = "答"
answer_en = "Answer"
law_zh = "《劳动合同法》第三十条"
law_en = "Labour Contract Law art. 30"
where = ["12348"]
""",
        "utf-8",
    )
    assert main(["legal", "import", str(good), "--dry-run"]) == 0
    assert "2 entries are valid (1 would replace" in capsys.readouterr().out
    assert main(["legal", "import", str(good)]) == 0
    assert "1 replace shipped ones, 1 new" in capsys.readouterr().out
