"""From stored rows to what each role may see: masking and field selection live here only."""

from __future__ import annotations

from services.desk.models import Outcome, Task
from services.desk.schemas import (
    BankRequestDetail,
    BankRequestSummary,
    DeskTaskDetail,
    DeskTaskSummary,
    OutcomeOut,
    Reason,
    TimelineEntry,
)
from services.desk.users import User
from services.desk.words import ACTIONS, RESULTS, label, yuan
from streams.privacy import mask_account, mask_msisdn


def outcome_out(o: Outcome | None) -> OutcomeOut | None:
    if o is None:
        return None
    return OutcomeOut(event_id=o.event_id, event_time=o.event_time, actor=o.actor,
                      result=o.result, amount_fen=o.amount_fen, note=o.note,
                      published=o.published_ms is not None)


def phone_visible(user: User, t: Task) -> bool:
    """Whole numbers only for the officer who claimed the task (and only until it is done)."""
    return t.claimed_by == user.name and t.status == "claimed"


def desk_summary(user: User, t: Task, o: Outcome | None) -> DeskTaskSummary:
    return DeskTaskSummary(
        task_id=t.task_id, action=t.action, priority=t.priority, status=t.status,
        created_time=t.created_time, due_time=t.due_time, due_ms=t.due_ms,
        risk_score=t.risk_score,
        contact_msisdn=mask_msisdn(t.contact_msisdn) if t.contact_msisdn else None,
        headline=t.reasons[0]["detail"] if t.reasons else "", claimed_by=t.claimed_by,
        result=o.result if o else None,
    )


def desk_detail(user: User, t: Task, o: Outcome | None,
                episode: list[tuple[Task, Outcome | None]]) -> DeskTaskDetail:
    base = desk_summary(user, t, o).model_dump()
    whole = phone_visible(user, t)
    if whole:
        base["contact_msisdn"] = t.contact_msisdn
    timeline: list[tuple[int, TimelineEntry]] = []
    for et, eo in episode:
        what = f"{ACTIONS.get(et.action, et.action)} task created"
        if et.amount_fen:
            what += f" ({yuan(et.amount_fen)})"
        timeline.append((et.created_ms, TimelineEntry(time=et.created_time, task_id=et.task_id,
                                                      what=what)))
        if eo is not None:
            what = f"{ACTIONS.get(et.action, et.action)}: {RESULTS.get(eo.result, eo.result)}"
            if eo.amount_fen is not None:
                what += f", {yuan(eo.amount_fen)}"
            timeline.append((eo.event_ms, TimelineEntry(time=eo.event_time, task_id=et.task_id,
                                                        what=f"{what} ({eo.actor})")))
    return DeskTaskDetail(
        **base, episode_id=t.episode_id, person_id=t.person_id,
        reasons=[Reason(code=r["code"], label=label(r["code"]), detail=r["detail"])
                 for r in t.reasons],
        phone_masked=not whole, amount_fen=t.amount_fen,
        timeline=[e for _, e in sorted(timeline, key=lambda p: p[0])],
        outcome=outcome_out(o), model_version=t.model_version, ruleset_version=t.ruleset_version,
    )


def bank_summary(t: Task, o: Outcome | None) -> BankRequestSummary:
    return BankRequestSummary(
        task_id=t.task_id, action=t.action, priority=t.priority, status=t.status,
        created_time=t.created_time, due_time=t.due_time, due_ms=t.due_ms,
        txn_id=t.txn_id or "", account=mask_account(t.account or ""),
        amount_fen=t.amount_fen or 0, result=o.result if o else None,
    )


def bank_detail(t: Task, o: Outcome | None) -> BankRequestDetail:
    base = bank_summary(t, o).model_dump()
    base["account"] = t.account or ""
    return BankRequestDetail(**base, outcome=outcome_out(o))
