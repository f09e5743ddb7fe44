"""A circuit breaker as a small, pure state machine with an injectable clock.

CLOSED: calls go through; ``failure_threshold`` consecutive failures open it.
OPEN: calls are refused at once, for ``cooldown`` seconds.
HALF_OPEN: after the cool-down, one probe call goes through (the others are still
refused); its success closes the breaker, its failure opens it for another cool-down.
"""

from __future__ import annotations

import enum
import threading
import time
from collections.abc import Callable

DEFAULT_FAILURE_THRESHOLD = 5
DEFAULT_COOLDOWN_SECONDS = 5.0


class BreakerState(enum.Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"


class CircuitBreaker:
    """Decides whether a call may go out; thread-safe, no I/O."""

    def __init__(
        self,
        failure_threshold: int = DEFAULT_FAILURE_THRESHOLD,
        cooldown: float = DEFAULT_COOLDOWN_SECONDS,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if isinstance(failure_threshold, bool) or failure_threshold < 1:
            raise ValueError(f"failure_threshold must be at least 1, got {failure_threshold}")
        if not cooldown > 0:
            raise ValueError(f"cooldown must be positive, got {cooldown}")
        self.failure_threshold = failure_threshold
        self.cooldown = float(cooldown)
        self._clock = clock
        self._lock = threading.Lock()
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._probe_started: float | None = None
        #: How many times the breaker has opened, and how many calls it refused.
        self.times_opened = 0
        self.rejected = 0

    @property
    def state(self) -> BreakerState:
        with self._lock:
            if self._state is BreakerState.OPEN and self._cooled_down():
                return BreakerState.HALF_OPEN
            return self._state

    def allow(self) -> bool:
        """True when a call may go out now. Every allowed call must be followed by
        :meth:`record_success` or :meth:`record_failure`."""
        with self._lock:
            if self._state is BreakerState.CLOSED:
                return True
            now = self._clock()
            if self._state is BreakerState.OPEN and self._cooled_down():
                self._state = BreakerState.HALF_OPEN
                self._probe_started = None
            if self._state is BreakerState.HALF_OPEN and (
                # One probe at a time; a probe never answered is replaced after a cool-down.
                self._probe_started is None or now - self._probe_started >= self.cooldown
            ):
                self._probe_started = now
                return True
            self.rejected += 1
            return False

    def record_success(self) -> None:
        with self._lock:
            self._state = BreakerState.CLOSED
            self._failures = 0
            self._probe_started = None

    def record_failure(self) -> None:
        with self._lock:
            self._failures += 1
            if self._state is BreakerState.HALF_OPEN or (
                self._state is BreakerState.CLOSED and self._failures >= self.failure_threshold
            ):
                self._open()

    def _open(self) -> None:
        self._state = BreakerState.OPEN
        self._opened_at = self._clock()
        self._probe_started = None
        self.times_opened += 1

    def _cooled_down(self) -> bool:
        return self._clock() - self._opened_at >= self.cooldown
