"""Plain words for what the pipeline's codes mean, for people at a desk.

Unknown codes still read sensibly: ``NEW_PAYEE_LARGE_AMOUNT`` becomes "New payee large amount".

>>> label("CALL_FROM_WATCHLISTED_NUMBER")
'Called by a watch-listed number'
>>> label("SOMETHING_NEW")
'Something new'
"""

from __future__ import annotations

LABELS = {
    "CALL_FROM_WATCHLISTED_NUMBER": "Called by a watch-listed number",
    "SMS_FROM_WATCHLISTED_NUMBER": "Message from a watch-listed number",
    "NEW_PAYEE_LARGE_AMOUNT": "Large first transfer to a new payee",
    "PAYEE_WATCHLISTED": "Money going to a watch-listed account",
    "MULE_PAYEE": "Payee account behaves like a rented (mule) account",
    "LONG_CALL_VIRTUAL": "Long call from a virtual-operator number",
    "LONG_CALL_INTERNATIONAL": "Long call from an international number",
    "TRANSFER_DURING_CALL": "Transfer during or just after a suspicious call",
    "ESCALATING_PAYMENTS": "Payments growing step by step",
    "CALL_UNREACHABLE": "The dissuasion call did not reach the person",
    "CALL_REFUSED": "The person insisted on paying",
    "MONEY_ARRIVED": "Money has already reached the payee",
}

ACTIONS = {
    "call": "Dissuasion call",
    "visit": "Face-to-face visit",
    "hold": "Hold the transfer",
    "stop_payment": "Emergency stop-payment",
}

RESULTS = {
    "dissuaded": "Dissuaded: reached, agreed not to pay",
    "unreachable": "Unreachable",
    "refused": "Refused: reached, insists on paying",
    "not_fraud": "Not fraud: reached, nothing wrong",
    "visited": "Visited face to face",
    "held": "Held",
    "stopped": "Stopped",
    "failed": "Failed",
}


def label(code: str) -> str:
    return LABELS.get(code) or code.replace("_", " ").strip().capitalize() or code


def yuan(fen: int | None) -> str:
    """Money as people read it: ``yuan(4800000) == '48,000.00 CNY'``."""
    return "" if fen is None else f"{fen // 100:,}.{fen % 100:02d} CNY"
