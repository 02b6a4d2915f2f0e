"""Counters a test reads to see what reached the simulator (API routes only, never admin)."""

from __future__ import annotations

import threading
from collections import Counter


class Stats:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._zero()

    def _zero(self) -> None:
        self.requests_by_route: Counter[str] = Counter()
        self.responses_by_status: Counter[str] = Counter()
        self.faults_injected: Counter[str] = Counter()
        self.created_by_kind: Counter[str] = Counter()
        self.contract_violations: list[dict] = []

    def clear(self) -> None:
        with self._lock:
            self._zero()

    def request(self, route: str) -> None:
        with self._lock:
            self.requests_by_route[route] += 1

    def response(self, status: int) -> None:
        with self._lock:
            self.responses_by_status[str(status)] += 1

    def fault(self, kind: str) -> None:
        with self._lock:
            self.faults_injected[kind] += 1

    def created(self, kind: str) -> None:
        """A job of ``kind`` (create, remix, edit, extension) or a character was accepted."""
        with self._lock:
            self.created_by_kind[kind] += 1

    def violation(self, route: str, problems: list[str]) -> None:
        with self._lock:
            self.contract_violations.append({"route": route, "problems": problems})

    def snapshot(self) -> dict:
        with self._lock:
            return {
                "requests_total": sum(self.requests_by_route.values()),
                "requests_by_route": dict(self.requests_by_route),
                "responses_by_status": dict(self.responses_by_status),
                "creates": self.created_by_kind["create"],
                "remixes": self.created_by_kind["remix"],
                "edits": self.created_by_kind["edit"],
                "extensions": self.created_by_kind["extension"],
                "characters": self.created_by_kind["character"],
                "faults_injected": dict(self.faults_injected),
                "contract_violations": list(self.contract_violations),
            }
