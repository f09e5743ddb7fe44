"""The Lambda exec wrapper, run the way the Lambda runtime runs it.

A temporary directory plays the Lambda file system: ``opt/python`` is a layer with
the package copied in (as ``pip install -t python/`` would lay it out), ``var/task``
the function, ``var/runtime`` the runtime with a stand-in ``bootstrap`` that execs
``$AWS_LAMBDA_EXEC_WRAPPER <python> bootstrap.py``. The interpreter is the base
Python, not this virtual environment: like Lambda's, it runs no momento_botocore.pth,
and finds boto3 on PYTHONPATH (Lambda's runtime directory holds boto3 the same way).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3
import pytest
from conftest import REGION, create_table

import _momento_botocore_startup
import momento_botocore

PACKAGE = Path(momento_botocore.__file__).parent
WRAPPER = Path("momento_botocore", "lambda", "momento-botocore-wrapper")

RUNTIME_BOOTSTRAP = """\
#!/bin/sh
# Stand-in for Lambda's runtime bootstrap: exec the wrapper with the interpreter.
if [ -n "$AWS_LAMBDA_EXEC_WRAPPER" ]; then
    exec "$AWS_LAMBDA_EXEC_WRAPPER" "$STANDIN_PYTHON" "$LAMBDA_RUNTIME_DIR/bootstrap.py"
fi
exec "$STANDIN_PYTHON" "$LAMBDA_RUNTIME_DIR/bootstrap.py"
"""

# Stand-in for the runtime's bootstrap.py: set up the paths as Lambda does, load the
# handler, call it once, and report what the function's process looked like.
RUNTIME_BOOTSTRAP_PY = """\
import importlib, json, os, sys
sys.path[0:0] = [os.environ["LAMBDA_TASK_ROOT"], os.environ["STANDIN_LAYER"]]
module, function = os.environ["_HANDLER"].split(".")
handler = getattr(importlib.import_module(module), function)
headers = handler({"endpoint": os.environ["STANDIN_ENDPOINT"]}, None)
startup = sys.modules.get("_momento_botocore_startup")
package = sys.modules.get("momento_botocore")
print(json.dumps({
    "headers": headers,
    "startup": None if startup is None else [startup.state, startup.started_by],
    "package": None if package is None else package.__file__,
    "sys_path": sys.path,
    "PYTHONPATH": os.environ.get("PYTHONPATH"),
    "ENABLED": os.environ.get("MOMENTO_BOTOCORE_ENABLED"),
    "OTHER_WRAPPER": os.environ.get("OTHER_WRAPPER"),
    "OTHER_SITECUSTOMIZE": os.environ.get("OTHER_SITECUSTOMIZE"),
    "RUNTIME_SITECUSTOMIZE": os.environ.get("RUNTIME_SITECUSTOMIZE"),
    "sitecustomize": getattr(sys.modules.get("sitecustomize"), "__file__", None),
}))
"""

FUNCTION = """\
import boto3

def handler(event, context):
    client = boto3.client("dynamodb", endpoint_url=event["endpoint"], region_name="us-east-1")
    reads = [client.get_item(TableName="items", Key={"pk": {"S": "a"}}) for _ in range(2)]
    return [r["ResponseMetadata"]["HTTPHeaders"].get("x-momento-cache") for r in reads]
"""

# Another layer's wrapper, shaped like OpenTelemetry's: it puts its own
# sitecustomize first on PYTHONPATH and execs the command it was given.
OTHER_WRAPPER = """\
#!/bin/sh
export OTHER_WRAPPER=ran
export PYTHONPATH="$(dirname "$0")/site:$PYTHONPATH"
exec "$@"
"""


def _write(path: Path, text: str, executable: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    if executable:
        path.chmod(0o755)
    return path


@pytest.fixture
def lambda_root(tmp_path: Path) -> Path:
    layer = tmp_path / "opt" / "python"
    shutil.copytree(
        PACKAGE, layer / "momento_botocore", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy2(_momento_botocore_startup.__file__, layer / "_momento_botocore_startup.py")
    runtime = tmp_path / "var" / "runtime"
    _write(runtime / "bootstrap", RUNTIME_BOOTSTRAP, executable=True)
    _write(runtime / "bootstrap.py", RUNTIME_BOOTSTRAP_PY)
    _write(tmp_path / "var" / "task" / "function.py", FUNCTION)
    _write(tmp_path / "opt" / "other" / "other-wrapper", OTHER_WRAPPER, executable=True)
    _write(
        tmp_path / "opt" / "other" / "site" / "sitecustomize.py",
        "import os\nos.environ['OTHER_SITECUSTOMIZE'] = 'ran'\n",
    )
    return tmp_path


@pytest.fixture
def items(endpoint: str) -> str:
    client = boto3.client("dynamodb", endpoint_url=endpoint, region_name=REGION)
    create_table(client, "items")
    client.put_item(TableName="items", Item={"pk": {"S": "a"}})
    return endpoint


def run_lambda(root: Path, endpoint: str, **variables: str) -> tuple[dict[str, Any], str]:
    """Start the stand-in runtime as Lambda would; the report and stderr."""
    boto3_home = str(Path(boto3.__file__).parent.parent)  # like /var/runtime's boto3
    runtime = root / "var" / "runtime"
    environ = {
        k: v for k, v in os.environ.items() if not k.startswith("MOMENTO_") and k != "PYTHONPATH"
    }
    environ.update(
        AWS_LAMBDA_EXEC_WRAPPER=str(root / "opt" / "python" / WRAPPER),
        LAMBDA_TASK_ROOT=str(root / "var" / "task"),
        LAMBDA_RUNTIME_DIR=str(runtime),
        PYTHONPATH=f"{runtime}{os.pathsep}{boto3_home}",
        _HANDLER="function.handler",
        MOMENTO_BOTOCORE_TTL_SECONDS="60",
        STANDIN_PYTHON=getattr(sys, "_base_executable", sys.executable),
        STANDIN_LAYER=str(root / "opt" / "python"),
        STANDIN_ENDPOINT=endpoint,
    )
    environ.update(variables)
    result = subprocess.run(
        [str(runtime / "bootstrap")],
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout), result.stderr


def test_the_wrapper_ships_executable() -> None:
    assert os.access(PACKAGE.parent / WRAPPER, os.X_OK)


def test_wrapper_activates_the_function_process_and_chains_another_wrapper(
    lambda_root: Path, items: str
) -> None:
    other = lambda_root / "opt" / "other"
    report, stderr = run_lambda(
        lambda_root, items, MOMENTO_BOTOCORE_NEXT_WRAPPER=str(other / "other-wrapper")
    )
    assert stderr == ""
    assert report["headers"] == ["miss", "hit"]
    assert report["startup"] == ["active", "lambda"]
    assert report["package"].startswith(str(lambda_root / "opt" / "python"))
    assert report["ENABLED"] == "1"
    # The other wrapper ran, and so did its sitecustomize, behind ours.
    assert (report["OTHER_WRAPPER"], report["OTHER_SITECUSTOMIZE"]) == ("ran", "ran")
    assert report["sitecustomize"] == str(other / "site" / "sitecustomize.py")
    # Lambda's own import paths, and the other layer's, are as they would be without us.
    runtime = lambda_root / "var" / "runtime"
    assert report["PYTHONPATH"].split(os.pathsep)[:2] == [str(other / "site"), str(runtime)]
    assert not any("momento_botocore" in entry for entry in report["sys_path"])
    assert report["sys_path"][:2] == [
        str(lambda_root / "var" / "task"),
        str(lambda_root / "opt" / "python"),
    ]


def test_wrapper_chains_to_an_existing_sitecustomize(lambda_root: Path, items: str) -> None:
    _write(
        lambda_root / "var" / "runtime" / "sitecustomize.py",
        "import os\nos.environ['RUNTIME_SITECUSTOMIZE'] = 'ran'\n",
    )
    report, stderr = run_lambda(lambda_root, items)
    assert stderr == ""
    assert report["headers"] == ["miss", "hit"]
    assert report["RUNTIME_SITECUSTOMIZE"] == "ran"
    assert report["sitecustomize"] == str(lambda_root / "var" / "runtime" / "sitecustomize.py")


def test_wrapper_with_caching_turned_off_changes_nothing(lambda_root: Path, items: str) -> None:
    other = lambda_root / "opt" / "other"
    report, stderr = run_lambda(
        lambda_root,
        items,
        MOMENTO_BOTOCORE_ENABLED="0",
        MOMENTO_BOTOCORE_NEXT_WRAPPER=str(other / "other-wrapper"),
    )
    assert stderr == ""
    assert report["headers"] == [None, None]
    assert report["package"] is None
    assert (report["OTHER_WRAPPER"], report["OTHER_SITECUSTOMIZE"]) == ("ran", "ran")


def test_wrapper_with_a_bad_setting_starts_the_function_uncached(
    lambda_root: Path, items: str
) -> None:
    report, stderr = run_lambda(
        lambda_root,
        items,
        MOMENTO_BOTOCORE_TTL_SECONDS="",
        MOMENTO_BOTOCORE_NEXT_WRAPPER=str(lambda_root / "opt" / "missing-wrapper"),
    )
    assert report["headers"] == [None, None]
    lines = stderr.splitlines()
    assert len(lines) == 2, stderr
    assert "MOMENTO_BOTOCORE_NEXT_WRAPPER" in lines[0]
    assert "running without it" in lines[0]
    assert "MOMENTO_BOTOCORE_TTL_SECONDS is not set" in lines[1]
