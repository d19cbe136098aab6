"""The numbering plan: Chinese mobile ranges per carrier, 170/171 virtual-operator ranges,
fixed-line ranges that VoIP gateways present, foreign numbers, banks' 95xxx service lines,
106 SMS-platform ranges, and bank card numbers by issuer (BIN prefix).

Draws are unique within a city; uniqueness is checked against a set (never iterated, so the
output does not depend on Python's string hashing).
"""

from __future__ import annotations

import numpy as np

# Mobile number segments (first three digits) of the three carriers.
MOBILE_SEGMENTS: dict[str, tuple[int, ...]] = {
    "CMCC": (
        134,
        135,
        136,
        137,
        138,
        139,
        147,
        150,
        151,
        152,
        157,
        158,
        159,
        178,
        182,
        183,
        184,
        187,
        188,
        195,
        198,
    ),
    "CUCC": (130, 131, 132, 145, 155, 156, 166, 175, 176, 185, 186, 196),
    "CTCC": (133, 149, 153, 173, 177, 180, 181, 189, 190, 191, 193, 199),
}
CARRIER_SHARE = {"CMCC": 0.58, "CUCC": 0.2, "CTCC": 0.22}
# Virtual operators resell capacity of the three networks on 170/171 numbers.
VIRTUAL_SEGMENTS = (170, 171)
# Area codes VoIP gateways present as caller numbers (Beijing, Shanghai, Guangzhou, Shenzhen...).
VOIP_AREAS = ("10", "21", "20", "755", "571", "28", "23")
# country code -> digits of the national number
FOREIGN_DIGITS = {
    "855": 8,
    "95": 9,
    "63": 10,
    "856": 10,
    "60": 9,
    "1": 10,
    "44": 10,
    "852": 8,
    "886": 9,
    "61": 9,
    "81": 10,
    "65": 8,
    "49": 11,
    "64": 9,
}
# where the city's emigrant children live, and where the fraud call centres present from
ABROAD_FAMILY = ("1", "44", "61", "81", "65", "49", "64", "852")
FRAUD_ABROAD = ("855", "95", "63", "856", "60", "1", "44", "852", "886")

# issuer BIN prefixes; bank cards are 16-19 digits
BANK_BINS: dict[str, tuple[str, ...]] = {
    "ICBC": ("622202", "621226", "621558"),
    "CCB": ("621700", "436742", "622700"),
    "ABC": ("622848", "621282"),
    "BOC": ("621661", "621785"),
    "BOCOM": ("622260", "621436"),
    "CMB": ("621483", "622588"),
    "PSBC": ("621799", "622188"),
    "RCB": ("621521", "622319"),  # the province's rural commercial bank
    "CITIC": ("622690",),
    "SPDB": ("622521",),
}
RESIDENT_BANK_SHARE = {
    "ICBC": 0.2,
    "CCB": 0.17,
    "ABC": 0.16,
    "BOC": 0.09,
    "BOCOM": 0.06,
    "CMB": 0.07,
    "PSBC": 0.12,
    "RCB": 0.1,
    "CITIC": 0.015,
    "SPDB": 0.015,
}
SERVICE_LINES = {
    "ICBC": "95588",
    "CCB": "95533",
    "ABC": "95599",
    "BOC": "95566",
    "BOCOM": "95559",
    "CMB": "95555",
    "PSBC": "95580",
    "RCB": "96588",
    "CITIC": "95558",
    "SPDB": "95528",
}


class Numbering:
    def __init__(self, rng: np.random.Generator):
        self.rng = rng
        self._used: set[str] = set()

    def _unique(self, make) -> str:
        while True:
            s = make()
            if s not in self._used:
                self._used.add(s)
                return s

    def _digits(self, n: int) -> str:
        return "".join(map(str, self.rng.integers(0, 10, n)))

    def carrier(self) -> str:
        names = list(CARRIER_SHARE)
        return names[int(self.rng.choice(len(names), p=list(CARRIER_SHARE.values())))]

    def mobile(self, carrier: str | None = None) -> str:
        segs = MOBILE_SEGMENTS[carrier or self.carrier()]
        return self._unique(lambda: f"+86{segs[self.rng.integers(len(segs))]}{self._digits(8)}")

    def virtual(self) -> str:
        return self._unique(
            lambda: f"+86{VIRTUAL_SEGMENTS[self.rng.integers(2)]}{self.rng.integers(0, 10)}{self._digits(7)}"
        )

    def voip(self) -> str:
        def make() -> str:
            area = VOIP_AREAS[self.rng.integers(len(VOIP_AREAS))]
            return f"+86{area}{self.rng.integers(2, 9)}{self._digits(7)}"

        return self._unique(make)

    def foreign(self, countries: tuple[str, ...]) -> str:
        def make() -> str:
            cc = countries[self.rng.integers(len(countries))]
            n = FOREIGN_DIGITS[cc]
            return f"+{cc}{self.rng.integers(2, 10)}{self._digits(n - 1)}"

        return self._unique(make)

    def sms_platform(self) -> str:
        """A 106 range used by SMS platforms (couriers, shops, apps, also abused for fraud)."""
        return self._unique(lambda: f"+86106{self.rng.integers(5, 10)}{self._digits(7)}")

    def business_line(self) -> str:
        """A company's landline or 400 number (dealers, schools, hospitals)."""
        if self.rng.random() < 0.4:
            return self._unique(lambda: f"+86400{self._digits(7)}")
        return self._unique(lambda: f"+86543{self.rng.integers(2, 9)}{self._digits(7)}")

    def account(self, bank: str) -> str:
        bins = BANK_BINS[bank]
        length = int(self.rng.choice((16, 19), p=(0.3, 0.7)))
        return self._unique(lambda: bins[self.rng.integers(len(bins))] + self._digits(length - 6))

    def bank(self, share: dict[str, float] | None = None) -> str:
        share = share or RESIDENT_BANK_SHARE
        names = list(share)
        p = np.array(list(share.values()), dtype=float)
        return names[int(self.rng.choice(len(names), p=p / p.sum()))]


def carrier_of(number: str) -> str | None:
    """The carrier of a Chinese mobile or virtual number, else None."""
    if not number.startswith("+861") or len(number) != 14:
        return None
    seg = int(number[3:6])
    if seg in VIRTUAL_SEGMENTS:
        # virtual operators ride on the three networks; the fourth digit says whose
        return ("CTCC", "CTCC", "CTCC", "CMCC", "CMCC", "CMCC", "CUCC", "CUCC", "CUCC", "CUCC")[
            int(number[6])
        ]
    for name, segs in MOBILE_SEGMENTS.items():
        if seg in segs:
            return name
    return None
