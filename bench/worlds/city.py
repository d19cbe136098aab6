"""What every part of the generator works on: the ledger it writes to, the clock, the residents,
the numbering plan and the setting's parameters."""

from __future__ import annotations

from dataclasses import dataclass

from .clock import Clock
from .ledger import Ledger
from .numbering import Numbering
from .population import Population


@dataclass
class City:
    ledger: Ledger
    clock: Clock
    pop: Population
    numbering: Numbering
    params: dict
