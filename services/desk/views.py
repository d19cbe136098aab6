"""From stored rows to what each role may see: masking and field selection live here only."""

from __future__ import annotations

from services.desk.i18n import Words
from services.desk.models import Attempt, Outcome, Person, Task
from services.desk.schemas import (
    AttemptOut,
    BankRequestDetail,
    BankRequestSummary,
    DeskTaskDetail,
    DeskTaskSummary,
    OpsTask,
    OutcomeOut,
    PersonOut,
    Reason,
    TimelineEntry,
)
from services.desk.users import User
from services.desk.words import ACTIONS, RESULTS, label
from streams.eventtime import fmt
from streams.privacy import mask_account, mask_msisdn


def outcome_out(o: Outcome | None) -> OutcomeOut | None:
    if o is None:
        return None
    return OutcomeOut(event_id=o.event_id, event_time=o.event_time, actor=o.actor,
                      result=o.result, amount_fen=o.amount_fen, note=o.note,
                      published=o.published_ms is not None)


def phone_visible(user: User, t: Task) -> bool:
    """Whole numbers only for the officer who holds the task (and only until it is done)."""
    return t.claimed_by == user.name and t.status == "claimed"


def desk_summary(user: User, t: Task, o: Outcome | None) -> DeskTaskSummary:
    return DeskTaskSummary(
        task_id=t.task_id, action=t.action, priority=t.priority, status=t.status,
        created_time=t.created_time, due_time=t.due_time, due_ms=t.due_ms,
        risk_score=t.risk_score,
        contact_msisdn=mask_msisdn(t.contact_msisdn) if t.contact_msisdn else None,
        headline=t.reasons[0]["detail"] if t.reasons else "", claimed_by=t.claimed_by,
        claim_until_ms=t.claim_until_ms if t.status == "claimed" else None,
        retry_ms=t.retry_ms, result=o.result if o else None,
        done_ms=o.event_ms if o else None, episode_id=t.episode_id,
    )


def _person(p: Person | None, whole: bool) -> PersonOut | None:
    if p is None:
        return None
    return PersonOut(birth_year=p.birth_year, district=p.district,
                     msisdns=list(p.msisdns) if whole else [mask_msisdn(m) for m in p.msisdns])


def timeline(w: Words, episode: list[tuple[Task, Outcome | None]]) -> list[TimelineEntry]:
    """What happened in the episode, in words: tasks created, outcomes recorded (the banks'
    included, with amounts, never an account)."""
    entries: list[tuple[int, TimelineEntry]] = []
    for et, eo in episode:
        what = w.gettext("%(action)s task created", action=w.gettext(ACTIONS[et.action]))
        if et.amount_fen:
            what += f" ({w.money(et.amount_fen)})"
        entries.append((et.created_ms, TimelineEntry(time=et.created_time, ms=et.created_ms,
                                                     task_id=et.task_id, what=what)))
        if eo is not None:
            what = f"{w.gettext(ACTIONS[et.action])}: {w.gettext(RESULTS.get(eo.result, eo.result))}"
            if eo.amount_fen is not None:
                what += f", {w.money(eo.amount_fen)}"
            entries.append((eo.event_ms, TimelineEntry(time=eo.event_time, ms=eo.event_ms,
                                                       task_id=et.task_id,
                                                       what=f"{what} ({eo.actor})")))
    return [e for _, e in sorted(entries, key=lambda p: p[0])]


def desk_detail(w: Words, user: User, t: Task, o: Outcome | None,
                episode: list[tuple[Task, Outcome | None]], attempts: list[Attempt],
                person: Person | None) -> DeskTaskDetail:
    base = desk_summary(user, t, o).model_dump()
    whole = phone_visible(user, t)
    if whole:
        base["contact_msisdn"] = t.contact_msisdn
    return DeskTaskDetail(
        **base, person_id=t.person_id,
        reasons=[Reason(code=r["code"], label=w.gettext(label(r["code"])), detail=r["detail"])
                 for r in t.reasons],
        phone_masked=not whole, amount_fen=t.amount_fen,
        person=_person(person, whole) if t.action == "visit" else None,
        attempts=[attempt_out(a, t.offset_min) for a in attempts],
        timeline=timeline(w, episode),
        outcome=outcome_out(o), model_version=t.model_version, ruleset_version=t.ruleset_version,
    )


def attempt_out(a: Attempt, offset_min: int) -> AttemptOut:
    return AttemptOut(time=fmt(a.at_ms, offset_min), ms=a.at_ms, user=a.user, result=a.result,
                      retry_time=fmt(a.retry_ms, offset_min) if a.retry_ms else None,
                      retry_ms=a.retry_ms, note=a.note)


def bank_summary(t: Task, o: Outcome | None) -> BankRequestSummary:
    return BankRequestSummary(
        task_id=t.task_id, action=t.action, priority=t.priority, status=t.status,
        created_time=t.created_time, due_time=t.due_time, due_ms=t.due_ms,
        txn_id=t.txn_id or "", account=mask_account(t.account or ""),
        amount_fen=t.amount_fen or 0, claimed_by=t.claimed_by, result=o.result if o else None,
        done_ms=o.event_ms if o else None,
    )


def bank_detail(t: Task, o: Outcome | None) -> BankRequestDetail:
    base = bank_summary(t, o).model_dump()
    base["account"] = t.account or ""
    return BankRequestDetail(**base, outcome=outcome_out(o))


def ops_task(t: Task, o: Outcome | None) -> OpsTask:
    return OpsTask(task_id=t.task_id, episode_id=t.episode_id, action=t.action,
                   district=t.district, bank=t.bank, priority=t.priority, status=t.status,
                   created_time=t.created_time, created_ms=t.created_ms, due_time=t.due_time,
                   due_ms=t.due_ms, claimed_by=t.claimed_by, result=o.result if o else None,
                   done_ms=o.event_ms if o else None)
