"""Named settings: each is the baseline with a few parameters changed, so a family of cities
differs in what matters to detection (typology mix, whether victims pay during the call, how many
transfers and how they grow, how mules are reused and drained, what the watch lists know, how
many benign look-alikes there are, how old the city is).
"""

from __future__ import annotations

import copy

AGE_BANDS = ((14, 17), (18, 24), (25, 34), (35, 44), (45, 59), (60, 69), (70, 79), (80, 95))

BASELINE: dict = {
    "start": "2026-04-06T00:00:00+08:00",  # a Monday
    "districts": ("371602", "371603", "371621", "371622", "371623", "371625", "371681"),
    # share of residents per age band (AGE_BANDS)
    "age_weights": (0.05, 0.10, 0.16, 0.17, 0.25, 0.14, 0.09, 0.04),
    # everyday traffic: multiplies every resident's call, SMS and payment rates
    "activity": 1.0,
    # victims per 10,000 residents a day (far above real life, so a small city holds dozens)
    "victims_per_10k_day": 17.0,
    # relative weight of each typology among victims
    "typology_mix": {
        "impersonation_police": 0.20,
        "fake_customer_service": 0.18,
        "rebate_task": 0.18,
        "pig_butchering": 0.12,
        "impersonation_acquaintance": 0.12,
        "fake_loan": 0.14,
        "elderly_care": 0.06,
    },
    # share of victims of call-led typologies (police, customer service) who pay while the
    # fraudster's call is still going on; the others pay after hanging up
    "pay_during_call": 0.5,
    # median minutes of the long "hooked" call of police impersonation (others scale with it)
    "hooked_call_minutes": 50.0,
    # multiplies the number of transfers per episode; and the growth of amounts step to step
    "transfers_scale": 1.0,
    "escalation": 1.8,
    # chat-only variants: share of rebate victims recruited by SMS (else chat, no record at all);
    # share of pig-butchering victims who also get voice calls; of fake-loan victims called
    "rebate_sms_share": 0.6,
    "pig_voice_share": 0.4,
    "loan_call_share": 0.5,
    # mules: share of payments to an account reused across victims; median minutes from money
    # in to money out; share of first-level mule accounts that belong to residents (sold cards)
    "mule_reuse": 0.5,
    "drain_minutes": 6.0,
    "resident_mule_share": 0.1,
    # fraud lines active per 10,000 residents a day, and the cold calls each makes a day here
    "fraud_lines_per_10k_day": 25.0,
    "cold_calls_per_line_day": 45.0,
    # strangers a day, per 10,000 residents, who take a long fraud call but do not pay
    "resisted_per_10k_day": 12.0,
    # watch lists: share of fraud lines / mule accounts listed before their first use; share of
    # the rest learnt from their behaviour, and the median hours that takes; median hours from a
    # case report to its numbers and accounts being listed
    "watch_prior_lines": 0.3,
    "watch_prior_mules": 0.25,
    "watch_learn_share": 0.6,
    "watch_learn_hours": 12.0,
    "watch_report_hours": 2.0,
    # share of benign telemarketing lines listed on complaints (half removed later)
    "watch_benign_lines": 0.15,
    # share of victims who file a case report (within the city's days, if it falls inside)
    "report_share": 0.85,
    # benign look-alikes: one factor on all, and each kind's rate
    "lookalike_scale": 1.0,
    "couriers_per_10k": 25.0,
    "sales_agents_per_10k": 10.0,
    "telemarketer_lines_per_10k": 20.0,
    "merchants_per_10k": 150.0,
    "fast_sweep_merchant_share": 0.1,
    "group_buy_leaders_per_10k": 5.0,
    "large_new_payee_per_10k_day": 8.0,
    "savings_moves_per_10k_day": 25.0,
    # share of elderly with a child who calls long and often; share with a child abroad
    "elderly_long_call_share": 0.3,
    "abroad_child_share": 0.05,
}

SETTINGS: dict[str, dict] = {
    "baseline": {},
    # the victims pay while the fraudster is on the line: the call record comes after the money
    "during-call-payers": {
        "typology_mix": {
            "impersonation_police": 0.35,
            "fake_customer_service": 0.30,
            "rebate_task": 0.08,
            "pig_butchering": 0.07,
            "impersonation_acquaintance": 0.08,
            "fake_loan": 0.08,
            "elderly_care": 0.04,
        },
        "pay_during_call": 0.92,
        "hooked_call_minutes": 75.0,
        "transfers_scale": 1.3,
    },
    # long-running investment frauds: many growing transfers over days, spread over many mules
    "pig-heavy": {
        "typology_mix": {
            "impersonation_police": 0.08,
            "fake_customer_service": 0.08,
            "rebate_task": 0.30,
            "pig_butchering": 0.38,
            "impersonation_acquaintance": 0.06,
            "fake_loan": 0.08,
            "elderly_care": 0.02,
        },
        "transfers_scale": 1.6,
        "escalation": 2.2,
        "mule_reuse": 0.3,
    },
    # the watch lists know little and learn late; fresh mules for each victim, drained fast
    "low-watchlist": {
        "watch_prior_lines": 0.05,
        "watch_prior_mules": 0.03,
        "watch_learn_share": 0.3,
        "watch_learn_hours": 48.0,
        "watch_report_hours": 24.0,
        "mule_reuse": 0.15,
        "drain_minutes": 2.0,
    },
    # an old city: more elderly, their long family calls, police and elderly-care frauds
    "elderly-city": {
        "age_weights": (0.03, 0.06, 0.10, 0.11, 0.22, 0.22, 0.17, 0.09),
        "typology_mix": {
            "impersonation_police": 0.32,
            "fake_customer_service": 0.10,
            "rebate_task": 0.06,
            "pig_butchering": 0.08,
            "impersonation_acquaintance": 0.10,
            "fake_loan": 0.06,
            "elderly_care": 0.28,
        },
        "elderly_long_call_share": 0.5,
        "abroad_child_share": 0.1,
    },
    # three times the benign look-alikes of every kind
    "many-lookalikes": {
        "lookalike_scale": 3.0,
        "fast_sweep_merchant_share": 0.3,
        "watch_benign_lines": 0.3,
        "resisted_per_10k_day": 25.0,
    },
    # fraud that never shows in call records: chat apps and fake investment apps
    "chat-only": {
        "typology_mix": {
            "impersonation_police": 0.05,
            "fake_customer_service": 0.05,
            "rebate_task": 0.30,
            "pig_butchering": 0.25,
            "impersonation_acquaintance": 0.25,
            "fake_loan": 0.10,
            "elderly_care": 0.0,
        },
        "rebate_sms_share": 0.0,
        "pig_voice_share": 0.0,
        "loan_call_share": 0.0,
    },
}


def setting(name: str, overrides: dict | None = None) -> dict:
    """The parameters of a named setting (baseline plus its changes, plus `overrides`)."""
    if name not in SETTINGS:
        raise ValueError(f"unknown setting {name!r}; known: {', '.join(SETTINGS)}")
    params = copy.deepcopy(BASELINE)
    params.update(copy.deepcopy(SETTINGS[name]))
    for key, value in (overrides or {}).items():
        if key not in params:
            raise ValueError(f"unknown parameter {key!r}")
        params[key] = value
    return params
