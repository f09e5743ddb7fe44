"""A key fenced since an earlier write stays fenced, for readers that do not take
the lock, while a second write renews its fence.

Deterministic: the renewal is held inside the _Fence constructor (where the old
code had popped the key and not yet put it back), and a reader thread looks then.
"""

from __future__ import annotations

import threading
from typing import Any

from momento_botocore import fences as fences_module
from momento_botocore.fences import Fences


class Clock:
    now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_key_fenced_all_along_is_never_seen_unfenced_during_a_renewal(monkeypatch: Any) -> None:
    fences = Fences(clock=Clock())
    assert fences.fence("items", "k", 60.0)  # write 1 acknowledged: fenced for 60 s
    assert fences.look("items", "k") is not None

    seen: list[Any] = []
    real = fences_module._Fence

    def held_fence(*args: Any, **kwargs: Any) -> Any:
        # fence() has popped "k" already and holds its lock: a reader runs now.
        reader = threading.Thread(target=lambda: seen.append(fences.look("items", "k")))
        reader.start()
        reader.join(timeout=5)
        return real(*args, **kwargs)

    monkeypatch.setattr(fences_module, "_Fence", held_fence)
    assert fences.fence("items", "k", 60.0)  # write 2 of the same key, concurrently
    assert len(seen) == 1
    # Expected: still fenced (write 1's fence never ended). Observed: None, so that
    # read trusts any cached entry, an old stream refresh included.
    assert seen[0] is not None, "the key was seen unfenced while its fence was renewed"
