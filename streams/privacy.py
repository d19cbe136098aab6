"""Masking of personal data for logs, metrics, reasons and lists.

>>> mask_msisdn("+8613912345678")
'+86139****5678'
>>> mask_account("6222020200112233445")
'6222***********3445'
"""


def mask_msisdn(msisdn: str) -> str:
    if len(msisdn) < 9:
        return msisdn[:2] + "*" * max(len(msisdn) - 2, 0)
    return msisdn[:6] + "****" + msisdn[-4:]


def mask_account(account: str) -> str:
    if len(account) < 9:
        return "*" * len(account)
    return account[:4] + "*" * (len(account) - 8) + account[-4:]
