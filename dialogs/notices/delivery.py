"""Sending a notice: expanding its audience into outbox rows, then reporting back.

A sending (``notice_runs`` row) is started by the job ``notice-send`` at the notice's
time (every week for a weekly one). Its recipients are written to the outbox in
batches of ``BATCH`` people, each batch in its own transaction together with the
sending's cursor (the last user id written), so:

- memory and transaction size stay bounded whatever the audience;
- a crash keeps whole batches; the job (derived again from the row at start-up)
  resumes after the cursor, and the dedupe key ``notice:<run>:<user>`` makes a batch
  written twice add nothing — nobody is lost, nobody gets two rows.

People who muted the notice's topic are left out (urgent notices excepted) and
counted; people who blocked Linli are left out and counted as blocked; people in their
quiet hours get a row that comes due when those end (urgent notices go at once).

The outbox sender delivers the rows at the platform's limits (scheduler/sender.py).
A periodic check counts each sending's rows and, once nothing but quiet-hours rows is
left, sends the author a report; a second, final one when those have gone too.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from dialogs import notify
from dialogs.feature import Env, Jobs, Periodic
from dialogs.i18n import Tr
from dialogs.messages import Choice, Outgoing
from dialogs.notices import buttons
from scheduler.jobs import JobSpec
from storage import communities, notices, outbox, users
from storage.engine import Database
from storage.notices import NoticeData, Progress, Recipient, RunData, RunStatus

log = logging.getLogger("linli.notices")

# People written to the outbox per transaction.
BATCH = 500
# A weekly notice whose time passed more than this long ago (Linli was down) is not
# sent late; the next week's is.
LATE_LIMIT = timedelta(hours=12)
PROGRESS_EVERY = timedelta(seconds=10)
WEEK = timedelta(days=7)

KIND = "notice"
KIND_QUIET = "notice-quiet"  # held behind the recipient's quiet hours


# -- what a recipient reads -----------------------------------------------------------


def body_for(notice: NoticeData, lang: str) -> str:
    draft = notice.draft
    return draft.text_en if lang == "en" and draft.text_en else draft.text


def message(notice: NoticeData, community: str, tr: Tr) -> Outgoing:
    head = tr("notices.head_urgent" if notice.draft.urgent else "notices.head", community=community)
    return Outgoing(
        text=f"{head}\n\n{body_for(notice, tr.lang)}",
        photo_ref=notice.draft.photo_ref,
        choices=[
            [
                Choice(tr("notices.btn_board"), buttons.OpenBoard().pack()),
                Choice(tr("notices.btn_settings"), buttons.OpenSettings().pack()),
            ]
        ],
    )


async def community_name(session: AsyncSession, community_id: int | None, tr: Tr) -> str:
    if community_id is None:
        return tr("notices.all_communities")
    found = await communities.get_community(session, community_id)
    return found.name if found is not None else tr("notices.all_communities")


# -- expanding the audience ------------------------------------------------------------


class _Lost(Exception):
    """The sending was cancelled or advanced by someone else: drop this batch."""


def _row(notice: NoticeData, run: RunData, person: Recipient, payload: dict[str, object], now: datetime):  # type: ignore[no-untyped-def]
    quiet = None if notice.draft.urgent else notices.quiet_until(now, person.prefs)
    return outbox.NewMessage(
        channel=person.channel,
        chat_id=person.chat_id,
        user_id=person.user_id,
        payload=payload,
        dedupe_key=f"notice:{run.id}:{person.user_id}",
        kind=KIND_QUIET if quiet is not None else KIND,
        not_before=quiet,
        notice_run_id=run.id,
    )


async def expand_batch(db: Database, env: Env, run_id: int, *, batch: int = BATCH) -> bool:
    """Write the next batch of a sending's recipients; True while there is more to do."""
    try:
        async with db.transaction() as session:
            run = await notices.get_run(session, run_id)
            if run is None or run.status is not RunStatus.EXPANDING:
                return False
            notice = await notices.get(session, run.notice_id)
            if notice is None:
                return False
            people = await notices.recipients(session, notice.draft, after=run.cursor, limit=batch)
            now = env.now()
            payloads: dict[str, dict[str, object]] = {}
            rows, muted, blocked = [], 0, 0
            for person in people:
                if person.blocked:
                    blocked += 1
                    continue
                if not notice.draft.urgent and notice.draft.topic in person.prefs.muted:
                    muted += 1
                    continue
                if person.language not in payloads:
                    tr = Tr(person.language)
                    name = await community_name(session, notice.draft.community_id, tr)
                    payloads[person.language] = message(notice, name, tr).to_dict()
                rows.append(_row(notice, run, person, payloads[person.language], now))
            await outbox.enqueue_many(session, rows)
            finished = len(people) < batch
            if not await notices.advance(
                session,
                run,
                cursor=people[-1].user_id if people else run.cursor,
                queued=len(rows),
                muted=muted,
                blocked=blocked,
                deferred=sum(1 for r in rows if r.kind == KIND_QUIET),
                finished=finished,
            ):
                raise _Lost
            return not finished
    except _Lost:
        return False


async def expand(db: Database, env: Env, arg: str) -> None:
    """Job ``notice-expand``: write every remaining recipient of a sending, batch by batch."""
    run_id = int(arg)
    while await expand_batch(db, env, run_id):
        pass


async def send_notice(db: Database, env: Env, arg: str) -> None:
    """Job ``notice-send``: start the sending planned for this time, then expand it."""
    notice_id, micros = (int(part) for part in arg.split(":"))
    planned = datetime.fromtimestamp(micros / 1_000_000, tz=notices.LOCAL).astimezone(env.now().tzinfo)
    async with db.transaction() as session:
        notice = await notices.get(session, notice_id)
        if notice is None or notice.status is not notices.NoticeStatus.ACTIVE:
            return
        run = await notices.start_run(session, notice_id, planned)
    await expand(db, env, str(run.id))


# -- which jobs the rows imply -----------------------------------------------------------


def _epoch(moment: datetime) -> int:
    return round(moment.timestamp() * 1_000_000)


def next_sending(notice: NoticeData, last: datetime | None, now: datetime) -> datetime | None:
    """When this notice is next due to be sent (None: never again)."""
    if not notice.draft.weekly:
        return notice.draft.send_at if last is None else None
    due = notice.draft.send_at if last is None else last + WEEK
    while due + LATE_LIMIT < now:
        due += WEEK
    return due


async def notice_jobs(session: AsyncSession, env: Env, now: datetime) -> list[JobSpec]:
    specs = []
    for notice in await notices.active(session):
        due = next_sending(notice, await notices.last_planned(session, notice.id), now)
        if due is not None:
            arg = f"{notice.id}:{_epoch(due)}"
            specs.append(JobSpec(f"notice-send:{arg}", due, "notice-send", arg))
    for run in await notices.runs_with_status(session, RunStatus.EXPANDING):
        # A sending interrupted by a crash (or a restart) carries on at once.
        specs.append(JobSpec(f"notice-expand:{run.id}", now, "notice-expand", str(run.id)))
    return specs


def send_now_spec(notice: NoticeData) -> JobSpec:
    """The job a confirmed notice needs at once (the source finds it again after a restart)."""
    arg = f"{notice.id}:{_epoch(notice.draft.send_at)}"
    return JobSpec(f"notice-send:{arg}", notice.draft.send_at, "notice-send", arg)


# -- progress and reports -----------------------------------------------------------------


async def progress(session: AsyncSession, run: RunData) -> Progress:
    counts = await outbox.run_counts(session, run.id)

    def n(status: str, kind: str | None = None) -> int:
        return sum(v for (s, k), v in counts.items() if s == status and (kind is None or k == kind))

    return Progress(
        sent=n("sent"),
        blocked=n("blocked") + run.blocked,
        failed=n("failed"),
        waiting=n("pending", KIND),
        deferred=n("pending", KIND_QUIET),
        cancelled=n("cancelled"),
        muted=run.muted,
    )


def report_text(
    notice: NoticeData, run: RunData, p: Progress, tr: Tr, *, final: bool, cancelled: bool = False
) -> str:
    key = (
        "notices.report_cancelled"
        if cancelled
        else ("notices.report_final" if final else "notices.report_first")
    )
    preview = notice.text if len(notice.text) <= 40 else notice.text[:40] + "…"
    return tr(
        key,
        id=notice.id,
        preview=preview,
        sent=p.sent,
        blocked=p.blocked,
        failed=p.failed,
        deferred=p.deferred,
        held=run.deferred,
        muted=p.muted,
        cancelled=p.cancelled,
    )


async def tell_author(
    session: AsyncSession,
    notice: NoticeData,
    run: RunData,
    p: Progress,
    *,
    stage: str,
    final: bool,
    cancelled: bool = False,
) -> None:
    if notice.author_user_id is None:
        return
    author = await users.get_user(session, notice.author_user_id)
    if author is None:
        return

    def build(tr: Tr) -> Outgoing:
        return Outgoing(
            report_text(notice, run, p, tr, final=final, cancelled=cancelled),
            choices=[[Choice(tr("notices.btn_list"), buttons.NoticeProgress(notice=notice.id).pack())]],
        )

    await notify.to_user(
        session, author, build, kind="notice-report", dedupe_key=f"notice-report:{run.id}:{stage}"
    )


async def check_run(session: AsyncSession, run: RunData) -> None:
    """Report on one sending if it has reached a point worth reporting."""
    p = await progress(session, run)
    if p.waiting:
        return
    notice = await notices.get(session, run.notice_id)
    if notice is None:
        return
    final = p.deferred == 0
    stage = 2 if final else 1
    if run.reported >= stage:
        return
    if not await notices.mark_reported(session, run, stage=stage, done=final):
        return  # another worker reported it
    await tell_author(session, notice, run, p, stage=str(stage), final=final)
    if final and not notice.draft.weekly:
        await notices.mark_done(session, notice.id)


async def check_progress(db: Database, env: Env, _arg: str) -> None:
    """Periodic ``notice-progress``: report on every sending that reached its end."""
    async with db.transaction() as session:
        running = await notices.runs_with_status(session, RunStatus.SENDING)
    for run in running:
        async with db.transaction() as session:
            await check_run(session, run)


JOBS = Jobs(
    sources=(notice_jobs,),
    runners={"notice-send": send_notice, "notice-expand": expand},
    periodic=(Periodic(id="notice-progress", every=PROGRESS_EVERY, run=check_progress),),
)


async def notice_jobs_for_tests(db: Database, env: Env) -> list[JobSpec]:
    """The jobs the rows imply now, due or not (what the scheduler would hold)."""
    async with db.transaction() as session:
        return await notice_jobs(session, env, env.now())
