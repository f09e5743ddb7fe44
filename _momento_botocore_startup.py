"""Zero-code activation of momento-botocore, the start-up half.

``momento_botocore.pth`` (installed at the top of site-packages) imports this module
only when ``MOMENTO_BOTOCORE_ENABLED`` is set; on AWS Lambda, the package's
``sitecustomize.py`` does. It uses the standard library only and imports nothing of
momento_botocore or botocore. A true value puts a one-shot finder on
``sys.meta_path``; right after botocore's package has been executed, it adds a
botocore initializer, and when the first botocore session is created, that calls
``momento_botocore.activation.activate()`` (``register(None,
config=CacheConfig.from_env())``) and covers that session too. Waiting for the first
session (not just the import) lets a program import momento_botocore itself, which
imports botocore, without a circular import. A process that never imports botocore
never pays for more than this module.

Nothing here raises: a problem is one line on stderr, and the process runs uncached.
"""

from __future__ import annotations

import _thread
import os
import sys

TYPE_CHECKING = False  # typing costs milliseconds at start-up; mypy reads this as True
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from importlib.machinery import ModuleSpec
    from types import ModuleType

ENABLED = "MOMENTO_BOTOCORE_ENABLED"
TRUE_VALUES = frozenset({"1", "true", "yes", "on"})
FALSE_VALUES = frozenset({"", "0", "false", "no", "off"})
PREFIX = "momento-botocore: "

#: What activation did in this interpreter, for ``momento-botocore doctor``: "off",
#: "waiting for botocore", "waiting for a botocore session", "active" or "failed".
state = "off"
#: Why it failed (the line printed on stderr), or "".
detail = ""
#: What started it: ".pth", "lambda", or "" (not started).
started_by = ""

_environ: Mapping[str, str] | None = None


def enabled(value: str | None) -> bool | None:
    """True or False for a recognised ``MOMENTO_BOTOCORE_ENABLED`` value, None otherwise."""
    text = (value or "").strip().lower()
    if text in TRUE_VALUES:
        return True
    if text in FALSE_VALUES:
        return False
    return None


def install(environ: Mapping[str, str] | None = None, *, via: str = ".pth") -> None:
    """Arrange for activation if ``MOMENTO_BOTOCORE_ENABLED`` is true. Never raises."""
    global state, started_by, _environ
    try:
        env = os.environ if environ is None else environ
        raw = env.get(ENABLED)
        switch = enabled(raw)
        if switch is None:
            fail(f"{ENABLED}={raw!r} is not one of 1, true, 0, false")
            return
        if not switch:
            return
        started_by, _environ = via, environ
        if "botocore" in sys.modules:  # imported before us: sessions may exist already
            activate_now()
            return
        if not any(isinstance(finder, AfterImport) for finder in sys.meta_path):
            sys.meta_path.insert(0, AfterImport("botocore", _botocore_imported))
        state = "waiting for botocore"
    except Exception as error:
        fail(_describe(error))


def activate_now(session: object = None) -> None:
    """Register the read hooks for every botocore session (and ``session``). Never raises."""
    global state, detail
    try:
        activation = _import_activation()
        activation.activate_from_startup(_environ, session)
    except Exception as error:
        fail(_describe(error))
    else:
        state, detail = "active", ""


def _botocore_imported() -> None:
    global state
    try:
        botocore = sys.modules["botocore"]
        botocore.register_initializer(_first_session)
        state = "waiting for a botocore session"
    except Exception as error:
        fail(_describe(error))


_first_session_lock = _thread.RLock()
_first_session_done = False


def _first_session(session: object) -> None:
    """botocore initializer: activate when the first session is created; later, nothing.

    It stays registered (removing an initializer while botocore runs them would
    skip the next one); the registration's own initializer, added after this one,
    covers the sessions that follow. Another thread's first session waits here until
    the registration exists.
    """
    global _first_session_done
    with _first_session_lock:
        if _first_session_done:
            return
        _first_session_done = True
        activate_now(session)


def fail(reason: str) -> None:
    """Record and report, once per process, why this process runs uncached."""
    global state, detail
    first = state != "failed"
    state = "failed"
    detail = f"not activated, DynamoDB reads are not cached: {reason}"
    if first:
        try:
            sys.stderr.write(PREFIX + detail + "\n")
            sys.stderr.flush()
        except Exception:
            pass  # no stderr: still never break the interpreter


def _describe(error: BaseException) -> str:
    if type(error).__name__ == "ConfigurationError":
        return str(error)  # already says which setting and why
    return f"{type(error).__name__}: {error}"


def _import_activation() -> ModuleType:
    try:
        import momento_botocore.activation as activation
    except ModuleNotFoundError as error:
        # On Lambda the runtime may import botocore before it has put the layer's
        # directory (where this file and the package live) on sys.path.
        root = os.path.dirname(os.path.abspath(__file__))
        if error.name != "momento_botocore" or root in sys.path:
            raise
        sys.path.append(root)
        import momento_botocore.activation as activation
    return activation


class AfterImport:
    """A one-shot ``sys.meta_path`` finder: ``callback()`` runs right after module
    ``name`` has been executed (and not at all if executing it fails)."""

    def __init__(self, name: str, callback: Callable[[], None]) -> None:
        self.name = name
        self.callback = callback

    def find_spec(
        self, fullname: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if fullname != self.name:
            return None
        try:
            sys.meta_path.remove(self)
        except ValueError:
            return None  # another thread is importing it: let the normal finders answer
        spec: ModuleSpec | None = None
        for finder in list(sys.meta_path):
            find_spec = getattr(finder, "find_spec", None)
            if find_spec is not None:
                spec = find_spec(fullname, path, target)
                if spec is not None:
                    break
        if spec is None:
            return None  # not installed: nothing to activate
        loader = spec.loader
        original = getattr(loader, "exec_module", None)
        if original is None:
            fail(f"cannot watch the import of {fullname} (loader {type(loader).__name__})")
            return spec
        callback = self.callback

        def exec_module(module: ModuleType) -> None:
            try:
                original(module)
            finally:
                _restore(loader)
            callback()

        try:
            setattr(loader, "exec_module", exec_module)  # noqa: B010 (an instance attribute)
        except Exception:
            fail(f"cannot watch the import of {fullname} (loader {type(loader).__name__})")
        return spec


def _restore(loader: object) -> None:
    attributes = getattr(loader, "__dict__", None)
    if attributes is not None:
        attributes.pop("exec_module", None)
