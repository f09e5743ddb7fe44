"""The public names stay what they say, whichever modules a program imports."""

from __future__ import annotations

import importlib
import pkgutil

import momento_botocore


def test_stats_is_still_the_function_after_every_module_is_imported() -> None:
    for module in pkgutil.walk_packages(momento_botocore.__path__, "momento_botocore."):
        if not module.name.endswith(".__main__"):  # a __main__ runs its command
            importlib.import_module(module.name)

    assert callable(momento_botocore.stats)
    assert isinstance(momento_botocore.stats(), dict)
    for name in momento_botocore.__all__:
        assert getattr(momento_botocore, name) is not None


def test_old_identity_imports_still_work() -> None:
    from momento_botocore.backends.base import SameObject, cache_identity
    from momento_botocore.identity import SameObject as Same
    from momento_botocore.identity import cache_identity as identity_of

    assert SameObject is Same
    assert cache_identity is identity_of
