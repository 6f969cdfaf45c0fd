"""Wall-clock time per phase of a long job (``report.json``'s ``timings``): where the minutes of a run go.

A :class:`PhaseTimes` accumulates seconds and counts per phase name; a phase entered several times (each iteration's
fine-tuning) adds up. Phases may nest (``loop`` holds ``loop.finetune``); :meth:`as_dict` keeps them flat, in the
order first entered. Only this process's time is counted: a resumed run reports what it did after resuming.
"""

import time
from contextlib import contextmanager


class PhaseTimes:
    def __init__(self, clock=time.perf_counter):
        self._clock = clock
        self._started = clock()
        self._phases: dict[str, list[float]] = {}  # name -> [seconds, count]

    @contextmanager
    def phase(self, name: str):
        """Times the block as (one more entry of) ``name``."""
        start = self._clock()
        try:
            yield
        finally:
            self.add(name, self._clock() - start)

    def add(self, name: str, seconds: float) -> None:
        entry = self._phases.setdefault(name, [0.0, 0])
        entry[0] += seconds
        entry[1] += 1

    def seconds(self, name: str) -> float:
        return self._phases.get(name, [0.0])[0]

    def as_dict(self) -> dict:
        """``{"phases": {name: {"seconds", "count"}}, "total_seconds"}`` (total: since this object was made)."""
        return {"phases": {name: {"seconds": round(s, 2), "count": n} for name, (s, n) in self._phases.items()},
                "total_seconds": round(self._clock() - self._started, 2)}
