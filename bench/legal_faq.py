"""How well the legal FAQ matcher answers questions people type: top-1 and top-3
accuracy over bench/legal_faq_questions.toml (paraphrases written apart from the FAQ's
own variants), how many best answers clear the confidence threshold, and the match time.

    python bench/legal_faq.py [--repeat 20]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
import tomllib
from pathlib import Path

from dialogs.legal import kb, matching

QUESTIONS = Path(__file__).with_name("legal_faq_questions.toml")
# Written after tuning and never used for it: the honest figure.
HELD_OUT = Path(__file__).with_name("legal_faq_heldout.toml")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=20, help="timing rounds over all questions")
    args = parser.parse_args()
    questions = tomllib.loads(QUESTIONS.read_text("utf-8"))["questions"]
    entries = kb.shipped()
    started = time.perf_counter()
    index = matching.Index(entries)
    build_ms = (time.perf_counter() - started) * 1000

    top1 = top3 = confident = 0
    misses = []
    for question, want in questions:
        hits = index.search(question)
        ids = [h.entry.id for h in hits]
        top1 += ids[0] == want
        top3 += want in ids
        confident += ids[0] == want and hits[0].score >= matching.THRESHOLD
        if ids[0] != want:
            misses.append(f"  {question!r}: expected {want}, got {ids}")
    held = tomllib.loads(HELD_OUT.read_text("utf-8"))["questions"]
    held_top1 = held_top3 = 0
    for question, want in held:
        ids = [h.entry.id for h in index.search(question)]
        held_top1 += bool(ids) and ids[0] == want
        held_top3 += want in ids
        if not ids or ids[0] != want:
            misses.append(f"  (held out) {question!r}: expected {want}, got {ids}")
    per_query = []
    for _ in range(args.repeat):
        for question, _want in questions:
            t = time.perf_counter()
            index.search(question)
            per_query.append((time.perf_counter() - t) * 1000)
    per_query.sort()
    n = len(questions)
    print(f"entries {len(entries)}, questions {n} ({platform.python_version()}, {platform.machine()})")
    print(
        f"top-1 {top1 / n:.1%}  top-3 {top3 / n:.1%}  "
        f"right and confident (≥{matching.THRESHOLD:.0f}) {confident / n:.1%}"
    )
    print(
        f"held-out set ({len(held)} questions never used for tuning): "
        f"top-1 {held_top1 / len(held):.1%}  top-3 {held_top3 / len(held):.1%}"
    )
    print(
        f"match time per question: median {statistics.median(per_query):.2f} ms, "
        f"p95 {per_query[int(len(per_query) * 0.95)]:.2f} ms; index build {build_ms:.1f} ms"
    )
    if misses:
        print("top-1 misses:\n" + "\n".join(misses))


if __name__ == "__main__":
    main()
