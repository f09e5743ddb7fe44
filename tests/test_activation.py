"""Zero-code activation: fresh interpreters configured by environment variables only.

The subprocesses run ``sys.executable``: the environment the tests run in (``make
test`` installs the package there with ``pip install -e``), whose site-packages holds
``momento_botocore.pth``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from conftest import REGION, create_table, new_session

import _momento_botocore_startup as startup
import momento_botocore
from momento_botocore import activation

ROOT = Path(__file__).resolve().parent.parent

# Plain boto3, no momento_botocore: reads one item twice through a client and twice
# through a Table resource, and reports the cache header of each answer.
PROGRAM = textwrap.dedent(
    """
    import json, sys
    import boto3

    endpoint = sys.argv[1]
    client = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1")
    resource = boto3.resource("dynamodb", endpoint_url=endpoint, region_name="us-east-1")
    table = resource.Table("items")

    def header(response):
        return response["ResponseMetadata"]["HTTPHeaders"].get("x-momento-cache")

    client_reads = [client.get_item(TableName="items", Key={"pk": {"S": "a"}}) for _ in range(2)]
    table_reads = [table.get_item(Key={"pk": "b"}) for _ in range(2)]
    print(json.dumps({
        "client": [header(r) for r in client_reads],
        "table": [header(r) for r in table_reads],
        "items": [r["Item"] for r in client_reads] + [r["Item"] for r in table_reads],
        "momento_botocore_imported": "momento_botocore" in sys.modules,
    }, default=str))
    """
)


def run_python(code: str, *args: str, **variables: str | None) -> subprocess.CompletedProcess[str]:
    """A fresh interpreter with this environment's settings, minus any MOMENTO_* ones."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("MOMENTO_")}
    environ.update({k: v for k, v in variables.items() if v is not None})
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def items(endpoint: str) -> str:
    client = boto3.client("dynamodb", endpoint_url=endpoint, region_name=REGION)
    create_table(client, "items")
    client.put_item(TableName="items", Item={"pk": {"S": "a"}, "n": {"N": "1"}})
    client.put_item(TableName="items", Item={"pk": {"S": "b"}, "n": {"N": "2"}})
    return endpoint


def test_the_startup_hook_is_installed_where_the_tests_run() -> None:
    installed = activation.installed_pth_files()
    assert installed, f"momento_botocore.pth is not in the site-packages of {sys.executable}"
    assert Path(installed[0]).read_text() == (ROOT / "momento_botocore.pth").read_text()


def test_enabled_process_serves_the_second_read_from_cache(items: str) -> None:
    result = run_python(
        PROGRAM, items, MOMENTO_BOTOCORE_ENABLED="1", MOMENTO_BOTOCORE_TTL_SECONDS="60"
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["client"] == ["miss", "hit"]
    assert report["table"] == ["miss", "hit"]
    assert report["items"][0] == report["items"][1] == {"pk": {"S": "a"}, "n": {"N": "1"}}
    assert report["items"][3]["pk"] == "b"
    assert result.stderr == ""


@pytest.mark.parametrize("value", [None, "0", "FALSE"])
def test_without_the_variable_the_process_is_untouched(items: str, value: str | None) -> None:
    result = run_python(
        PROGRAM, items, MOMENTO_BOTOCORE_ENABLED=value, MOMENTO_BOTOCORE_TTL_SECONDS="60"
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["client"] == [None, None]
    assert report["table"] == [None, None]
    assert report["momento_botocore_imported"] is False
    assert result.stderr == ""


def test_switch_values() -> None:
    for value in ("1", "true", "True", " yes ", "on"):
        assert startup.enabled(value) is True
    for value in (None, "", " ", "0", "false", "FALSE", "no", "off"):
        assert startup.enabled(value) is False
    for value in ("2", "maybe", "enabled"):
        assert startup.enabled(value) is None


def test_enabled_hook_imports_nothing_until_the_program_uses_botocore() -> None:
    code = textwrap.dedent(
        """
        import sys
        before = sorted(m for m in sys.modules if "botocore" in m and "editable" not in m)
        import botocore.session
        botocore.session.Session()
        print(before, "momento_botocore.registration" in sys.modules)
        """
    )
    result = run_python(code, MOMENTO_BOTOCORE_ENABLED="true", MOMENTO_BOTOCORE_TTL_SECONDS="9")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["['_momento_botocore_startup']", "True"]


@pytest.mark.parametrize(
    ("variables", "says"),
    [
        ({"MOMENTO_BOTOCORE_TTL_SECONDS": None}, "MOMENTO_BOTOCORE_TTL_SECONDS is not set"),
        ({"MOMENTO_BOTOCORE_BACKEND": "redis"}, "unknown backend 'redis'"),
        ({"MOMENTO_BOTOCORE_TTL_SECONDS": "soon"}, "MOMENTO_BOTOCORE_TTL_SECONDS='soon'"),
        ({"MOMENTO_BOTOCORE_ENABLED": "maybe"}, "MOMENTO_BOTOCORE_ENABLED='maybe' is not one"),
    ],
)
def test_bad_setting_prints_one_line_and_runs_uncached(
    items: str, variables: dict[str, str | None], says: str
) -> None:
    settings: dict[str, str | None] = {
        "MOMENTO_BOTOCORE_ENABLED": "1",
        "MOMENTO_BOTOCORE_TTL_SECONDS": "60",
        **variables,
    }
    result = run_python(PROGRAM, items, **settings)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["client"] == [None, None]
    assert report["table"] == [None, None]
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("momento-botocore: not activated, DynamoDB reads are not cached: ")
    assert says in lines[0]


def test_program_that_imports_momento_botocore_itself_is_activated_once(items: str) -> None:
    code = textwrap.dedent(
        """
        import sys
        import boto3
        import momento_botocore
        client = boto3.client("dynamodb", endpoint_url=sys.argv[1], region_name="us-east-1")
        reads = [client.get_item(TableName="items", Key={"pk": {"S": "a"}}) for _ in range(2)]
        print([r["ResponseMetadata"]["HTTPHeaders"].get("x-momento-cache") for r in reads])
        """
    )
    result = run_python(
        code, items, MOMENTO_BOTOCORE_ENABLED="1", MOMENTO_BOTOCORE_TTL_SECONDS="60"
    )
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.strip() == "['miss', 'hit']"


def test_sessions_created_at_once_by_many_threads_are_all_cached(items: str) -> None:
    code = textwrap.dedent(
        """
        import sys, threading
        import boto3

        start = threading.Barrier(8)
        headers = []

        def work():
            start.wait()
            client = boto3.Session(region_name="us-east-1").client(
                "dynamodb", endpoint_url=sys.argv[1]
            )
            reads = [client.get_item(TableName="items", Key={"pk": {"S": "a"}}) for _ in range(2)]
            headers.append(reads[1]["ResponseMetadata"]["HTTPHeaders"].get("x-momento-cache"))

        threads = [threading.Thread(target=work) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        print(headers)
        """
    )
    result = run_python(
        code, items, MOMENTO_BOTOCORE_ENABLED="1", MOMENTO_BOTOCORE_TTL_SECONDS="60"
    )
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.strip() == str(["hit"] * 8)


def test_register_in_code_wins_over_the_environment(items: str) -> None:
    code = textwrap.dedent(
        """
        import sys
        import boto3
        import momento_botocore
        momento_botocore.register(None, ttl=60, tables=["other"])
        client = boto3.client("dynamodb", endpoint_url=sys.argv[1], region_name="us-east-1")
        reads = [client.get_item(TableName="items", Key={"pk": {"S": "a"}}) for _ in range(2)]
        print([r["ResponseMetadata"]["HTTPHeaders"].get("x-momento-cache") for r in reads])
        """
    )
    result = run_python(
        code, items, MOMENTO_BOTOCORE_ENABLED="1", MOMENTO_BOTOCORE_TTL_SECONDS="60"
    )
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.strip() == "[None, None]"  # "items" is not among the tables in code


# In-process: the pieces of the start-up hook ----------------------------------------


@pytest.fixture
def startup_state() -> Iterator[None]:
    saved = (startup.state, startup.detail, startup.started_by, startup._environ)
    finders = list(sys.meta_path)
    yield
    startup.state, startup.detail, startup.started_by, startup._environ = saved
    sys.meta_path[:] = finders


@pytest.mark.usefixtures("startup_state")
def test_install_after_botocore_was_imported_activates_at_once(endpoint: str) -> None:
    plain_client = new_session().client("dynamodb", endpoint_url=endpoint)
    startup.install(
        {"MOMENTO_BOTOCORE_ENABLED": "1", "MOMENTO_BOTOCORE_TTL_SECONDS": "60"}, via="test"
    )
    assert (startup.state, startup.started_by) == ("active", "test")
    client = new_session().client("dynamodb", endpoint_url=endpoint)
    create_table(client, "items")
    # Written by a session made before activation: a registered writer would tombstone it.
    plain_client.put_item(TableName="items", Item={"pk": {"S": "a"}})
    reads = [client.get_item(TableName="items", Key={"pk": {"S": "a"}}) for _ in range(2)]
    assert [r["ResponseMetadata"]["HTTPHeaders"].get("x-momento-cache") for r in reads] == [
        "miss",
        "hit",
    ]
    assert activation.status().on


@pytest.mark.usefixtures("startup_state")
def test_install_reports_a_bad_setting_once_and_registers_nothing(
    capsys: pytest.CaptureFixture[str],
) -> None:
    startup.install({"MOMENTO_BOTOCORE_ENABLED": "1"})
    startup.install({"MOMENTO_BOTOCORE_ENABLED": "1"})
    assert startup.state == "failed"
    assert capsys.readouterr().err.count("\n") == 1
    assert activation.status().registration is None


def _write_module(directory: Path, name: str, body: str) -> None:
    (directory / f"{name}.py").write_text(textwrap.dedent(body))


@pytest.mark.usefixtures("startup_state")
def test_after_import_calls_back_once_the_module_has_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write_module(tmp_path, "watched_module", "READY = True\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    seen: list[Any] = []

    def callback() -> None:
        seen.append(sys.modules["watched_module"].READY)

    hook = startup.AfterImport("watched_module", callback)
    sys.meta_path.insert(0, hook)
    try:
        import watched_module  # type: ignore[import-not-found]

        assert watched_module.READY
        assert seen == [True]
        assert hook not in sys.meta_path
        assert "exec_module" not in vars(watched_module.__spec__.loader)
    finally:
        sys.modules.pop("watched_module", None)


@pytest.mark.usefixtures("startup_state")
def test_after_import_does_not_call_back_when_the_module_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write_module(tmp_path, "broken_module", "raise RuntimeError('broken')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    seen: list[str] = []
    sys.meta_path.insert(0, startup.AfterImport("broken_module", lambda: seen.append("x")))
    with pytest.raises(RuntimeError, match="broken"):
        import broken_module  # type: ignore[import-not-found]  # noqa: F401
    assert seen == []


def test_the_explicit_alternative_is_the_same_registration(endpoint: str) -> None:
    environ = {"MOMENTO_BOTOCORE_TTL_SECONDS": "60", "MOMENTO_BOTOCORE_TABLES": "items"}
    registration = momento_botocore.register(
        None, config=momento_botocore.CacheConfig.from_env(environ)
    )
    assert activation.activate(environ) is registration
