"""Plain words for the pipeline's codes, as message ids of the catalogs (``services/desk/locale``).

The words are English here and translated at render time (``i18n``); an unknown reason code
still reads sensibly: ``NEW_PAYEE_LARGE_AMOUNT`` becomes "New payee large amount".

>>> label("CALL_FROM_WATCHLISTED_NUMBER")
'Called by a watch-listed number'
>>> label("SOMETHING_NEW")
'Something new'
"""

from __future__ import annotations


def N_(msg: str) -> str:
    """Marks a message for the catalogs; translated where it is shown."""
    return msg


LABELS = {
    "CALL_FROM_WATCHLISTED_NUMBER": N_("Called by a watch-listed number"),
    "SMS_FROM_WATCHLISTED_NUMBER": N_("Message from a watch-listed number"),
    "LONG_CALL_FROM_COLD_CALLER": N_("Long call from a line that calls many strangers"),
    "LONG_CALL_FROM_FOREIGN_LINE": N_("Long call from an international or virtual line"),
    "TRANSFER_TO_WATCHLISTED_ACCOUNT": N_("Money going to a watch-listed account"),
    "TRANSFER_TO_MULE_LIKE_ACCOUNT": N_("Payee account behaves like a mule account"),
    "TRANSFER_TO_RENTED_CARD": N_("Payee account looks like a rented card"),
    "SAFE_ACCOUNT_TRANSFER": N_("Transfer to a so-called safe account"),
    "ELDERLY_PAYMENT_AFTER_LONG_CALL": N_("Elderly person paying after a long call"),
    "LARGE_FIRST_PAYMENT_TO_NEW_ACCOUNT": N_("Large first transfer to a new payee"),
    "ESCALATING_PAYMENTS_TO_NEW_ACCOUNT": N_("Payments to a new payee growing step by step"),
    "MINOR_PAYS_NEW_ACCOUNT": N_("A minor paying a new account"),
    "NEW_PAYEE_LARGE_AMOUNT": N_("Large first transfer to a new payee"),
    "PAYEE_WATCHLISTED": N_("Money going to a watch-listed account"),
    "MULE_PAYEE": N_("Payee account behaves like a mule account"),
    "TRANSFER_DURING_CALL": N_("Transfer during or just after a suspicious call"),
    "CALL_OVERDUE": N_("The dissuasion call was not done in time"),
    "CALL_UNREACHABLE": N_("The dissuasion call did not reach the person"),
    "CALL_REFUSED": N_("The person insisted on paying"),
    "HOLD_TOO_LATE": N_("The hold came too late: the money has left"),
    "HOLD_EXPIRING": N_("Protective measures are about to lapse"),
    "STOP_PAYMENT_EXPIRING": N_("The stop-payment is about to lapse: renew it"),
    "FREEZE_REQUIRED": N_("A formal freeze must follow the stop-payment"),
    "PAID_AFTER_WARNING": N_("Paying on after being warned"),
    "EPISODE_PAYEE": N_("Paying again an account this case already flagged"),
    "TRANSFER_TO_REPORTED_ACCOUNT": N_("Money going to an account a victim reported"),
    "TRANSFER_TO_ACCOUNT_BANKS_HELD": N_("Banks have held transfers to this payee account"),
    "CALL_FROM_REPORTED_NUMBER": N_("Called by a number a victim reported"),
    "MODEL_RISK": N_("The classifier rates the fraud risk high"),
    "ELDERLY_PERSON": N_("An elderly person"),
    "MONEY_ARRIVED": N_("Money has already reached the payee"),
}

ACTIONS = {
    "call": N_("Dissuasion call"),
    "visit": N_("Face-to-face visit"),
    "hold": N_("Hold the transfer"),
    "stop_payment": N_("Emergency stop-payment"),
}

RESULTS = {
    "dissuaded": N_("Dissuaded: reached, agreed not to pay"),
    "unreachable": N_("Unreachable"),
    "refused": N_("Refused: reached, insists on paying"),
    "not_fraud": N_("Not fraud: reached, nothing wrong"),
    "visited": N_("Visited face to face"),
    "held": N_("Held"),
    "stopped": N_("Stopped"),
    "failed": N_("Failed"),
}

# A call attempt that did not settle the task: the officer tries again before the due time.
ATTEMPTS = {
    "no_answer": N_("No answer"),
    "busy": N_("Line busy"),
    "switched_off": N_("Phone switched off"),
    "call_back": N_("Asked to be called back"),
}

STATUSES = {"open": N_("Open"), "claimed": N_("In hand"), "done": N_("Done")}

AUDIT = {
    "read": N_("read"), "claim": N_("claimed"), "assign": N_("assigned"),
    "release": N_("released"), "hand_over": N_("handed over"), "reassign": N_("reassigned"),
    "claim_expired": N_("claim expired"), "attempt": N_("call attempt"),
    "outcome": N_("outcome"), "login": N_("logged in"), "login_failed": N_("login failed"),
    "login_locked": N_("login refused: locked"), "login_throttled": N_("login refused: too many"),
    "shift_start": N_("shift started"), "shift_end": N_("shift ended"),
}


def label(code: str) -> str:
    return LABELS.get(code) or code.replace("_", " ").strip().capitalize() or code
