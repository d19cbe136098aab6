"""Phone numbers and bank accounts that look like China's: E.164 lines and card numbers by BIN.

Every number is drawn from the simulation's own generator and checked against the ones already
handed out, so a line or an account belongs to exactly one holder.
"""

from __future__ import annotations

import numpy as np

# Mobile number ranges (first three digits) by carrier.
CARRIER_PREFIXES: dict[str, tuple[int, ...]] = {
    "CMCC": (134, 135, 136, 137, 138, 139, 147, 150, 151, 152, 157, 158, 159, 178, 182, 183,
             184, 187, 188, 198),
    "CUCC": (130, 131, 132, 145, 155, 156, 166, 175, 176, 185, 186),
    "CTCC": (133, 149, 153, 173, 177, 180, 181, 189, 199),
}
VIRTUAL_PREFIXES = (170, 171)  # virtual-operator (MVNO) ranges, sold through the big three
# International origins seen in cross-border fraud: country code and local number length.
INTERNATIONAL = ((855, 9), (95, 9), (63, 10), (856, 10), (60, 9), (886, 9), (852, 8), (66, 9))
VOIP_AREA_CODES = (10, 21, 20, 755, 592, 898, 871)  # spoofed landline-looking displays

# Debit-card BINs and card-number lengths (16-19 digits) of the banks in the city.
CARD_BINS: dict[str, tuple[tuple[str, int], ...]] = {
    "ICBC": (("622202", 19), ("621226", 19)),
    "CCB": (("621700", 19), ("622700", 19)),
    "ABC": (("622848", 19), ("622845", 19)),
    "BOC": (("621661", 19), ("621785", 19)),
    "BOCOM": (("622262", 19),),
    "CMB": (("621483", 16), ("621485", 16)),
    "PSBC": (("621799", 19), ("622188", 19)),
    "CIB": (("622909", 18),),
    "CITIC": (("621771", 16),),
}
BANK_SERVICE_LINES: dict[str, str] = {
    "ICBC": "+8695588", "CCB": "+8695533", "ABC": "+8695599", "BOC": "+8695566",
    "BOCOM": "+8695559", "CMB": "+8695555", "PSBC": "+8695580", "CIB": "+8695561",
    "CITIC": "+8695558",
}
WARNING_LINE = "+8696110"  # the national anti-fraud warning line that dissuasion calls come from


class NumberBook:
    """Hands out unique phone numbers and accounts; deterministic for a given generator."""

    def __init__(self, rng: np.random.Generator):
        self.rng = rng
        self._used: set[str] = set()

    def _take(self, candidates: list[str], n: int) -> list[str]:
        out: list[str] = []
        for c in candidates:
            if c not in self._used:
                self._used.add(c)
                out.append(c)
                if len(out) == n:
                    break
        return out

    def _fill(self, n: int, draw) -> list[str]:
        out: list[str] = []
        while len(out) < n:
            out += self._take(draw(int((n - len(out)) * 1.1) + 8), n - len(out))
        return out

    def mobiles(self, n: int, prefixes: tuple[int, ...]) -> list[str]:
        def draw(k: int) -> list[str]:
            p = self.rng.choice(np.asarray(prefixes, dtype=np.int64), size=k)
            s = self.rng.integers(0, 100_000_000, size=k)
            return [f"+86{a}{b:08d}" for a, b in zip(p.tolist(), s.tolist(), strict=True)]
        return self._fill(n, draw)

    def carrier_mobiles(self, carriers: list[str]) -> list[str]:
        """One mobile number per entry of ``carriers``, from that carrier's ranges."""
        out = [""] * len(carriers)
        for name, prefixes in CARRIER_PREFIXES.items():
            idx = [i for i, c in enumerate(carriers) if c == name]
            for i, num in zip(idx, self.mobiles(len(idx), prefixes), strict=True):
                out[i] = num
        return out

    def international(self, n: int) -> list[str]:
        def draw(k: int) -> list[str]:
            pick = self.rng.integers(0, len(INTERNATIONAL), size=k).tolist()
            digits = self.rng.integers(0, 10**10, size=k).tolist()
            out = []
            for j, d in zip(pick, digits, strict=True):
                cc, length = INTERNATIONAL[j]
                local = f"{d:010d}"[-length:]
                out.append(f"+{cc}{(int(local[0]) % 9) + 1}{local[1:]}")
            return out
        return self._fill(n, draw)

    def voip(self, n: int) -> list[str]:
        def draw(k: int) -> list[str]:
            area = self.rng.choice(np.asarray(VOIP_AREA_CODES), size=k).tolist()
            s = self.rng.integers(20_000_000, 100_000_000, size=k).tolist()
            return [f"+86{a}{b}" for a, b in zip(area, s, strict=True)]
        return self._fill(n, draw)

    def cards(self, banks: list[str]) -> list[str]:
        """One debit-card number for each bank in ``banks``."""
        def draw_one(bank: str) -> str:
            bins = CARD_BINS[bank]
            b, length = bins[int(self.rng.integers(0, len(bins)))]
            rest = int(self.rng.integers(0, 10 ** (length - 6)))
            return f"{b}{rest:0{length - 6}d}"
        out = []
        for bank in banks:
            while True:
                c = draw_one(bank)
                if c not in self._used:
                    self._used.add(c)
                    out.append(c)
                    break
        return out

    def corporate(self, n: int) -> list[str]:
        """Company settlement accounts (merchants, employers, dealers): 16-19 digits."""
        def draw(k: int) -> list[str]:
            lengths = self.rng.integers(16, 20, size=k).tolist()
            digits = self.rng.integers(10**15, 10**18, size=k).tolist()
            return [f"{(d % 9) + 1}{d:018d}"[:ln] for d, ln in zip(digits, lengths, strict=True)]
        return self._fill(n, draw)
