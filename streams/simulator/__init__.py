"""The synthetic city: realistic calls and transfers, fraud campaigns with their victims, benign
look-alikes, and (in the closed loop) desks, banks and people who answer warning tasks.

>>> import tempfile, os
>>> d = tempfile.mkdtemp()
>>> r = simulate(200, 1, seed=7, out=os.path.join(d, "city.jsonl"))
>>> r.counts["registry"]
200
"""

from .run import RunResult, simulate

__all__ = ["RunResult", "simulate"]
