"""Zero-code activation, the package half.

``MOMENTO_BOTOCORE_ENABLED=1`` makes the start-up hook (``momento_botocore.pth``, or
the Lambda wrapper's ``sitecustomize``) call :func:`activate` right after botocore is
imported. It is exactly the call a program can make itself::

    import momento_botocore
    momento_botocore.register(None, config=momento_botocore.CacheConfig.from_env())

:func:`status` tells ``momento-botocore doctor`` what happened in this interpreter.
"""

from __future__ import annotations

import os
import site
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import _momento_botocore_startup as startup
from momento_botocore import environment as env
from momento_botocore.config import CacheConfig
from momento_botocore.registration import Registration, global_registration, register

PTH_FILE = "momento_botocore.pth"


def activate(environ: Mapping[str, str] | None = None) -> Registration:
    """Cache DynamoDB reads of every botocore session, configured from the environment.

    Raises :class:`~momento_botocore.ConfigurationError` for a missing or bad setting.
    """
    return register(None, config=CacheConfig.from_env(environ))


def activate_from_startup(environ: Mapping[str, str] | None, session: Any = None) -> Registration:
    """What the start-up hook calls: :func:`activate`, unless code registered first.

    A ``register(None, ...)`` made in code wins over the environment. ``session`` is
    the botocore session being created when the hook fired: it is covered too.
    """
    registration = global_registration()
    if registration is None:
        registration = activate(environ)
    if session is not None:
        registration._initialize_session(session)
    return registration


@dataclass(frozen=True)
class ActivationStatus:
    """Zero-code activation in this interpreter."""

    enabled_value: str | None  # MOMENTO_BOTOCORE_ENABLED as set, or None
    enabled: bool | None  # what that value means (None: not a recognised value)
    state: str  # "off", "waiting for botocore", "active" or "failed"
    detail: str  # why it failed, or ""
    started_by: str  # ".pth", "lambda" or ""
    pth_files: tuple[str, ...]  # momento_botocore.pth in this interpreter's site dirs
    registration: Registration | None  # the registration for every session, if any

    @property
    def on(self) -> bool:
        return self.registration is not None and self.registration.active


def status(environ: Mapping[str, str] | None = None) -> ActivationStatus:
    environ = os.environ if environ is None else environ
    value = environ.get(env.ENABLED)
    return ActivationStatus(
        enabled_value=value,
        enabled=startup.enabled(value),
        state=startup.state,
        detail=startup.detail,
        started_by=startup.started_by,
        pth_files=installed_pth_files(),
        registration=global_registration(),
    )


def installed_pth_files() -> tuple[str, ...]:
    """Where ``momento_botocore.pth`` sits in the directories whose .pth files Python runs."""
    directories = list(site.getsitepackages())
    if site.ENABLE_USER_SITE:
        directories.append(site.getusersitepackages())
    found = []
    for directory in dict.fromkeys(directories):
        path = os.path.join(directory, PTH_FILE)
        if os.path.isfile(path):
            found.append(path)
    return tuple(found)


def python_description() -> str:
    return f"{sys.executable} (Python {sys.version.split()[0]})"
