"""Airflow's own UI draws our connection forms from the provider info, seen in a real headless Chromium.

A module fixture starts the real Airflow 3 API server (it serves the React UI) with a private
AIRFLOW_HOME; the browser logs in through the Simple auth manager's login form, opens "Add Connection",
picks each of our connection types and checks what a person sees; then it saves a ``walkme``
connection through the form and reads it back over the REST API and the CLI.

Needs Playwright from PyPI and a Chromium from the system (Debian: ``apt-get install chromium``):
Playwright's own browser download is never used. ``CHROMIUM_EXECUTABLE`` may name another binary.
Screenshots land in the test's ``tmp_path`` and, for people, in ``out/browser/`` (git-ignored).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import requests

from airflow_provider_segments import WALKME_CONN_TYPE, ZENDESK_CONN_TYPE
from airflow_provider_segments.get_provider_info import get_provider_info

try:
    from playwright.sync_api import expect, sync_playwright
except ImportError:  # the browser fixture turns this into a failure with instructions, not a skip
    expect = sync_playwright = None  # type: ignore[assignment]

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Locator, Page

pytestmark = pytest.mark.browser

REPO_ROOT = Path(__file__).resolve().parents[2]
#: Screenshots are copied here too, so a person can look at the forms after a run.
SCREENSHOT_COPY_DIR = REPO_ROOT / "out" / "browser"

# What Chromium needs on these machines (root, no GPU, no network beyond loopback). Playwright adds
# --headless itself and gives every launch a fresh temporary profile (it refuses --user-data-dir).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

MIGRATE_TIMEOUT_S = 120
SERVER_START_TIMEOUT_S = 90
SERVER_STOP_TIMEOUT_S = 15
CLI_TIMEOUT_S = 60
HTTP_TIMEOUT_S = 10
BROWSER_LAUNCH_TIMEOUT_MS = 60_000
# Generous: the first call to the UI's connection metadata endpoint loads every provider.
UI_TIMEOUT_MS = 20_000

USERNAME = "admin"

# The labels Airflow's UI gives the standard fields it would show for a type without a form of its
# own ("Generic"); a hidden field must not show under its label.
UI_DEFAULT_LABELS = {
    "host": "Host",
    "login": "Login",
    "password": "Password",
    "schema": "Schema",
    "port": "Port",
}


# --- the Airflow API server -------------------------------------------------------------------


@dataclass(frozen=True)
class AirflowServer:
    """A running ``airflow api-server`` and what a test needs to talk to it."""

    base_url: str
    username: str
    password: str
    env: dict[str, str]
    log_path: Path

    def log_tail(self, chars: int = 8000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]

    def http(self) -> requests.Session:
        session = requests.Session()
        session.trust_env = False  # never send loopback traffic through a proxy from the environment
        return session

    def api_token(self) -> str:
        """A JWT from the Simple auth manager's token endpoint, for the REST API's Bearer auth."""
        resp = self.http().post(
            f"{self.base_url}/auth/token",
            json={"username": self.username, "password": self.password},
            timeout=HTTP_TIMEOUT_S,
        )
        assert resp.status_code == 201, f"POST /auth/token: {resp.status_code} {resp.text}"
        return resp.json()["access_token"]

    def cli_json(self, *args: str) -> Any:
        """Run ``airflow ARGS -o json`` against this server's AIRFLOW_HOME and parse its JSON line."""
        proc = subprocess.run(
            [sys.executable, "-m", "airflow", *args, "-o", "json"],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=CLI_TIMEOUT_S,
            check=False,
        )
        assert proc.returncode == 0, f"airflow {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"
        # Airflow may print log lines before the JSON document.
        (line,) = [line for line in proc.stdout.splitlines() if line.startswith(("[", "{"))]
        return json.loads(line)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _airflow_env(home: Path, password_file: Path, port: int) -> dict[str, str]:
    # Nothing Airflow-related leaks in from the caller (the suite's conftest sets its own AIRFLOW_HOME).
    env = {key: value for key, value in os.environ.items() if not key.startswith("AIRFLOW")}
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
            # Airflow 3's default auth manager, spelled out. It reads users from this list and their
            # passwords from the file; it only generates (and prints) passwords for users missing there,
            # so a file we write gives a login known in advance, with no manual step.
            "AIRFLOW__CORE__AUTH_MANAGER": (
                "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
            ),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USERNAME}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(password_file),
            # Fixed for the server's lifetime, so every token it issues validates.
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
            "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
            # Loopback only (also keeps the Simple auth manager's "looks like production" warning away).
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(port),
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Terminate the server's process group, then kill it if it has not gone within the timeout."""
    # start_new_session=True made the server the leader of its own group: this reaches its workers too.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=SERVER_STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)


def _wait_until_up(proc: subprocess.Popen[bytes], server: AirflowServer) -> None:
    health = f"{server.base_url}/api/v2/monitor/health"  # answers without a login
    http = server.http()
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while True:
        if proc.poll() is not None:
            pytest.fail(
                f"airflow api-server exited with code {proc.returncode} before answering.\n"
                f"--- server log ({server.log_path}) ---\n{server.log_tail()}",
                pytrace=False,
            )
        with contextlib.suppress(requests.RequestException):
            if http.get(health, timeout=2).status_code == 200:
                return
        if time.monotonic() > deadline:
            pytest.fail(
                f"airflow api-server did not answer {health} within {SERVER_START_TIMEOUT_S} s.\n"
                f"--- server log ({server.log_path}) ---\n{server.log_tail()}",
                pytrace=False,
            )
        time.sleep(0.5)


@pytest.fixture(scope="module")
def airflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowServer]:
    """The real Airflow 3 API server with the React UI, on a free loopback port, in a private home."""
    home = tmp_path_factory.mktemp("airflow-home")
    (home / "dags").mkdir()
    password = secrets.token_urlsafe(16)
    password_file = home / "simple_auth_manager_passwords.json"
    password_file.write_text(json.dumps({USERNAME: password}))
    port = _free_port()
    env = _airflow_env(home, password_file, port)
    server = AirflowServer(
        base_url=f"http://127.0.0.1:{port}",
        username=USERNAME,
        password=password,
        env=env,
        log_path=home / "api-server.log",
    )

    try:
        migrate = subprocess.run(
            [sys.executable, "-m", "airflow", "db", "migrate"],
            env=env,
            capture_output=True,
            text=True,
            timeout=MIGRATE_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"airflow db migrate took longer than {MIGRATE_TIMEOUT_S} s: {exc}", pytrace=False)
    if migrate.returncode != 0:
        pytest.fail(
            f"airflow db migrate failed ({migrate.returncode}):\n{migrate.stdout[-4000:]}\n"
            f"{migrate.stderr[-4000:]}",
            pytrace=False,
        )

    print(f"Airflow API server on {server.base_url}, log in {server.log_path}")  # shown on failure
    with server.log_path.open("wb") as log:
        # A file, not a pipe: a pipe nobody reads fills up and stalls the server.
        proc = subprocess.Popen(
            [sys.executable, "-m", "airflow", "api-server", "-H", "127.0.0.1", "-p", str(port), "-w", "1"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait_until_up(proc, server)
        yield server
    finally:
        _stop(proc)


# --- the browser --------------------------------------------------------------------------------


def _chromium_executable() -> str:
    configured = os.environ.get("CHROMIUM_EXECUTABLE")
    names = [configured] if configured else ["chromium", "chromium-browser"]
    for name in names:
        if found := shutil.which(name):
            return found
    pytest.fail(
        f"No Chromium found (looked for {', '.join(names)}). These tests drive the system's Chromium: "
        "install it with `apt-get install -y chromium` (Debian) or set CHROMIUM_EXECUTABLE. "
        "`playwright install` downloads a browser and does not work on machines without internet.",
        pytrace=False,
    )


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Headless Debian Chromium driven by Playwright (fails, never skips, when it cannot start)."""
    if sync_playwright is None:
        pytest.fail(
            "Playwright is not installed: `pip install playwright` (the browser comes from the system).",
            pytrace=False,
        )
    executable = _chromium_executable()
    expect.set_options(timeout=UI_TIMEOUT_MS)
    with sync_playwright() as pw:
        try:
            launched = pw.chromium.launch(
                executable_path=executable, args=CHROMIUM_ARGS, timeout=BROWSER_LAUNCH_TIMEOUT_MS
            )
        except Exception as exc:
            pytest.fail(f"Chromium ({executable}) did not start: {exc}", pytrace=False)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="module")
def login_state(browser: Browser, airflow_server: AirflowServer) -> dict[str, Any]:
    """Log in once through the Simple auth manager's form; later pages reuse its cookie."""
    context = browser.new_context()
    try:
        page = context.new_page()
        page.set_default_timeout(UI_TIMEOUT_MS)
        page.goto(f"{airflow_server.base_url}/connections")
        # Not logged in: the UI sends us to the auth manager's login page, which comes back after login.
        page.get_by_label("Username").fill(airflow_server.username)
        page.get_by_label("Password").fill(airflow_server.password)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url("**/connections")
        return context.storage_state()
    finally:
        context.close()


@pytest.fixture
def page(browser: Browser, login_state: dict[str, Any]) -> Iterator[Page]:
    context = browser.new_context(storage_state=login_state, viewport={"width": 1280, "height": 1000})
    try:
        new_page = context.new_page()
        new_page.set_default_timeout(UI_TIMEOUT_MS)
        yield new_page
    finally:
        context.close()


@pytest.fixture
def shoot(tmp_path: Path) -> Callable[[Page | Locator, str], Path]:
    """Screenshot a page or an element into tmp_path and copy it to out/browser/ for people."""

    def take(target: Page | Locator, name: str) -> Path:
        path = tmp_path / name
        target.screenshot(path=path)
        SCREENSHOT_COPY_DIR.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, SCREENSHOT_COPY_DIR / name)
        return path

    return take


# --- the UI, by what a person sees ----------------------------------------------------------------


def _provider_connection_type(conn_type: str) -> dict[str, Any]:
    (info,) = [c for c in get_provider_info()["connection-types"] if c["connection-type"] == conn_type]
    return info


def open_add_connection_dialog(page: Page, server: AirflowServer) -> Locator:
    page.goto(f"{server.base_url}/connections")
    page.get_by_role("button", name="Add Connection").click()
    # The dialog has no accessible name of its own: its heading tells it apart.
    dialog = page.get_by_role("dialog").filter(has=page.get_by_role("heading", name="Add Connection"))
    expect(dialog).to_be_visible()
    return dialog


def choose_connection_type(dialog: Locator, hook_name: str) -> Locator:
    """Pick a type in the searchable connection-type combobox; return the "Standard Fields" section."""
    dialog.get_by_role("combobox", name="Connection Type").fill(hook_name)
    # The option list is rendered outside the dialog's subtree, so look for it on the page.
    # exact: "Zendesk" (the official provider) must not match "Zendesk Help Center".
    dialog.page.get_by_role("option", name=hook_name, exact=True).click()
    standard = dialog.get_by_role("region", name="Standard Fields")
    expect(standard).to_be_visible()
    return standard


def open_extra_fields(dialog: Locator) -> None:
    # An accordion: opening "Extra Fields" closes "Standard Fields". exact: not "Extra Fields JSON".
    dialog.get_by_role("button", name="Extra Fields", exact=True).click()


def extra_field(dialog: Locator, label: str) -> Locator:
    """The input of an extra (conn-fields) field, found by its visible label.

    The UI does not tie these labels to their inputs (the inputs have no accessible name), so the
    field's group is found by its label text and the textbox taken from inside it.
    """
    label_text = dialog.page.get_by_text(label, exact=True)
    return dialog.get_by_role("group").filter(has=label_text).get_by_role("textbox")


def extra_dropdown(dialog: Locator, label: str) -> Locator:
    """The select of an extra field whose schema has an ``enum`` (found like :func:`extra_field`)."""
    label_text = dialog.page.get_by_text(label, exact=True)
    return dialog.get_by_role("group").filter(has=label_text).get_by_role("combobox")


def assert_form_follows_provider_info(
    dialog: Locator,
    standard: Locator,
    conn_type: str,
    relabelled: dict[str, str],
    extra_labels: list[str],
    shoot: Callable[[Page | Locator, str], Path],
) -> None:
    """Relabelled standard fields with their placeholders, no hidden field, and the extra fields."""
    behaviour = _provider_connection_type(conn_type)["ui-field-behaviour"]
    conn_fields = _provider_connection_type(conn_type)["conn-fields"]

    for field, label in relabelled.items():
        assert behaviour["relabeling"][field] == label, f"provider info relabels {field} differently"
        box = standard.get_by_role("textbox", name=label, exact=True)
        expect(box).to_be_visible()
        expect(box).to_have_attribute("placeholder", behaviour["placeholders"][field])
        # Relabelled, not shown twice: Airflow's own label for the field is gone.
        expect(standard.get_by_label(UI_DEFAULT_LABELS[field], exact=True)).to_have_count(0)
    for field in behaviour["hidden-fields"]:
        expect(standard.get_by_label(UI_DEFAULT_LABELS[field], exact=True)).to_have_count(0)
    shoot(dialog, f"{conn_type}-standard-fields.png")

    open_extra_fields(dialog)
    assert sorted(spec["label"] for spec in conn_fields.values()) == sorted(extra_labels)
    for spec in conn_fields.values():
        # A field with a list of choices (region, auth_type) is a dropdown, not a free text box.
        find = extra_dropdown if "enum" in spec["schema"] else extra_field
        expect(find(dialog, spec["label"])).to_be_visible()
        expect(dialog.get_by_text(spec["description"], exact=True)).to_be_visible()
    # Extra fields carry their hint in the description (asserted above): Airflow 3's UI shows
    # provider-info placeholders for standard fields only, so the provider declares none for extras.
    shoot(dialog, f"{conn_type}-extra-fields.png")


# --- the tests ------------------------------------------------------------------------------------


def test_walkme_add_connection_form_is_relabelled_with_placeholders_extras_and_no_schema_or_port(
    page: Page, airflow_server: AirflowServer, shoot: Callable[[Page | Locator, str], Path]
) -> None:
    dialog = open_add_connection_dialog(page, airflow_server)

    # First a type without a form of its own: it shows Schema and Port under these labels, which
    # proves the "not shown" checks below look for the right thing.
    generic = choose_connection_type(dialog, "Generic")
    for field in ("schema", "port"):
        expect(generic.get_by_label(UI_DEFAULT_LABELS[field], exact=True)).to_be_visible()

    standard = choose_connection_type(dialog, "WalkMe")
    assert_form_follows_provider_info(
        dialog,
        standard,
        WALKME_CONN_TYPE,
        relabelled={"host": "API base URL", "login": "Client ID", "password": "Client Secret"},
        extra_labels=["System GUID", "Region"],
        shoot=shoot,
    )


def test_zendesk_help_center_add_connection_form_is_relabelled_with_placeholders_and_auth_type(
    page: Page, airflow_server: AirflowServer, shoot: Callable[[Page | Locator, str], Path]
) -> None:
    dialog = open_add_connection_dialog(page, airflow_server)
    standard = choose_connection_type(dialog, "Zendesk Help Center")
    assert_form_follows_provider_info(
        dialog,
        standard,
        ZENDESK_CONN_TYPE,
        relabelled={
            "host": "Subdomain or base URL",
            "login": "Agent email",
            "password": "API token / OAuth token / password",
        },
        extra_labels=["Auth type"],
        shoot=shoot,
    )


def test_walkme_connection_saved_through_the_form_reads_back_with_system_guid_under_its_plain_key(
    page: Page, airflow_server: AirflowServer, shoot: Callable[[Page | Locator, str], Path]
) -> None:
    conn_id = "walkme_from_ui"
    host = "https://api.eu.walkme.com"
    client_id = "client-id-from-ui"
    client_secret = "client-secret-from-ui"
    system_guid = "5f2b9c1e8d7a4b3c9e6f1a2d3c4b5a69"

    dialog = open_add_connection_dialog(page, airflow_server)
    dialog.get_by_role("textbox", name="Connection ID", exact=True).fill(conn_id)
    standard = choose_connection_type(dialog, "WalkMe")
    standard.get_by_role("textbox", name="API base URL", exact=True).fill(host)
    standard.get_by_role("textbox", name="Client ID", exact=True).fill(client_id)
    standard.get_by_role("textbox", name="Client Secret", exact=True).fill(client_secret)
    open_extra_fields(dialog)
    extra_field(dialog, "System GUID").fill(system_guid)
    shoot(dialog, "walkme-filled-before-save.png")

    save = dialog.get_by_role("button", name="Save")
    expect(save).to_be_enabled()
    save.click()
    expect(dialog).to_be_hidden()
    expect(page.get_by_text(conn_id, exact=True)).to_be_visible()  # the connection list shows it
    shoot(page, "walkme-saved-connection-list.png")

    http = airflow_server.http()
    resp = http.get(
        f"{airflow_server.base_url}/api/v2/connections/{conn_id}",
        headers={"Authorization": f"Bearer {airflow_server.api_token()}"},
        timeout=HTTP_TIMEOUT_S,
    )
    assert resp.status_code == 200, f"{resp.status_code} {resp.text}\n{airflow_server.log_tail()}"
    conn = resp.json()
    assert (conn["conn_type"], conn["host"], conn["login"]) == (WALKME_CONN_TYPE, host, client_id)
    assert conn["schema"] is None and conn["port"] is None  # hidden in the form, so never set
    assert conn["password"] != client_secret  # the REST API masks secrets ("***")
    extra = json.loads(conn["extra"])
    # The UI stores conn-fields under their plain names (what the hooks read), not the
    # "extra__walkme__system_guid" form Airflow 2's Flask UI used.
    assert extra["system_guid"] == system_guid
    assert not [key for key in extra if key.startswith("extra__")], extra
    assert extra.get("region") is None  # left empty in the form

    # The secret itself, as a task would get it (the CLI reads the metadata DB, unmasked).
    (stored,) = airflow_server.cli_json("connections", "get", conn_id)
    assert stored["password"] == client_secret
    assert stored["extra_dejson"]["system_guid"] == system_guid
