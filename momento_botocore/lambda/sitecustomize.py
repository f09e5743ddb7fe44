"""momento-botocore's sitecustomize for AWS Lambda (see momento-botocore-wrapper).

Put first on PYTHONPATH by the wrapper, it runs before the function's code:

1. it takes its own directory out of ``sys.path`` and ``PYTHONPATH`` again, so the
   function (and any process it starts) sees Lambda's own import paths;
2. it loads ``_momento_botocore_startup`` from the directory that holds the
   ``momento_botocore`` package (the layer's ``python/`` or the function's root) and
   starts zero-code activation, which waits for botocore;
3. it runs the ``sitecustomize`` it shadows (another layer's, the runtime's), as if
   it had been found first.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import sys

_STARTUP = "_momento_botocore_startup"


def _same(a: str, b: str) -> bool:
    return os.path.realpath(a or os.curdir) == os.path.realpath(b)


def _leave_import_paths(here: str) -> None:
    sys.path[:] = [entry for entry in sys.path if not _same(entry, here)]
    entries = [entry for entry in os.environ.get("PYTHONPATH", "").split(os.pathsep) if entry]
    kept = [entry for entry in entries if not _same(entry, here)]
    if kept:
        os.environ["PYTHONPATH"] = os.pathsep.join(kept)
    else:
        os.environ.pop("PYTHONPATH", None)


def _start_activation(root: str) -> None:
    try:
        startup = sys.modules.get(_STARTUP)
        if startup is None:
            spec = importlib.util.spec_from_file_location(
                _STARTUP, os.path.join(root, _STARTUP + ".py")
            )
            if spec is None or spec.loader is None:
                raise ImportError(f"{_STARTUP}.py not found in {root}")
            startup = importlib.util.module_from_spec(spec)
            sys.modules[_STARTUP] = startup
            spec.loader.exec_module(startup)
        startup.install(via="lambda")
    except Exception as error:
        sys.modules.pop(_STARTUP, None)
        sys.stderr.write(
            "momento-botocore: not activated, DynamoDB reads are not cached: "
            f"{type(error).__name__}: {error}\n"
        )


def _run_shadowed_sitecustomize(here: str) -> None:
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", sys.path)
    if spec is None or spec.loader is None or spec.origin is None:
        return
    if _same(os.path.dirname(spec.origin), here):
        return
    module = importlib.util.module_from_spec(spec)
    sys.modules["sitecustomize"] = module  # what `import sitecustomize` now gives
    spec.loader.exec_module(module)  # its errors are reported by site, as usual


def _main() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    _leave_import_paths(here)
    _start_activation(os.path.dirname(os.path.dirname(here)))
    _run_shadowed_sitecustomize(here)


_main()
