"""The fake provider server the chaos suite runs against, imported in this one place."""

from __future__ import annotations

import itertools
import threading

from backend.fake_provider import FakeProviderServer

__all__ = ["FakeProviderServer", "FlakyProviderServer"]


class FlakyProviderServer(FakeProviderServer):
    """A fake server where every second request to each flaky provider answers 429 + Retry-After.

    Deterministic (alternating per provider) rather than random, so a rerun meets the same faults.
    """

    def __init__(self, *args, flaky: tuple[str, ...] = (), retry_after: int = 2, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.flaky = set(flaky)
        self.retry_after = retry_after
        self._counters = {provider: itertools.count() for provider in flaky}
        self._flaky_lock = threading.Lock()
        take = self._faults.take

        def take_with_flakes(provider: str, path: str):
            """Arm a one-shot 429 on every second request of a flaky provider, then take as usual."""
            if provider in self.flaky:
                with self._flaky_lock:
                    fail = next(self._counters[provider]) % 2 == 0
                if fail:
                    self.set_fault(provider, "status_429", count=1, retry_after=self.retry_after)
            return take(provider, path)

        self._faults.take = take_with_flakes
