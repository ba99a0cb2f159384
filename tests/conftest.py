"""Fixtures that build on each other: branch -> staff by role -> clients in each RM's book."""

import os
import shutil

import pytest
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, settings

from core.models import Role
from tests.factories import BranchFactory, ClientFactory, staff

# Playwright's sync API runs an event loop in the test thread; Django's ORM refuses it unless told.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

PASSWORD = "pw-Secret-123"

# Property tests assert behaviour, never speed: no per-example deadline (Hypothesis's default
# 200 ms fails a correct test on a loaded machine), and the function-scoped database fixtures
# are meant to be shared by the examples of one test.
settings.register_profile(
    "crm", deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "crm"))


def services_required() -> bool:
    """In CI every real service must be there: a missing one fails the run instead of skipping."""
    return os.environ.get("CRM_REQUIRE_SERVICES") == "1"


def pytest_sessionstart(session):
    """CI promises every test runs against PostgreSQL; the PostgreSQL-only tests skip on SQLite,
    so a CI run on any other database must fail loudly instead of skipping them."""
    from django.conf import settings

    engine = settings.DATABASES["default"]["ENGINE"]
    if services_required() and "postgresql" not in engine:
        raise pytest.UsageError(f"CRM_REQUIRE_SERVICES=1 needs PostgreSQL, not {engine}")


@pytest.fixture
def branch(db):
    return BranchFactory(code="SH01", name="上海陆家嘴营业部", city="上海")


@pytest.fixture
def other_branch(db):
    return BranchFactory(code="BJ01", name="北京金融街营业部", city="北京")


@pytest.fixture
def rm_a(branch):
    return staff(Role.RM, username="rm_a", display_name="王经理", branch=branch)


@pytest.fixture
def rm_b(other_branch):
    return staff(Role.RM, username="rm_b", display_name="李经理", branch=other_branch)


@pytest.fixture
def branch_manager(branch):
    return staff(Role.BRANCH_MANAGER, username="bm_sh", branch=branch)


@pytest.fixture
def ops_user(branch):
    return staff(Role.OPS, username="ops", branch=None)


@pytest.fixture
def compliance_user(db):
    return staff(Role.COMPLIANCE, username="compliance", branch=None)


@pytest.fixture
def admin_user_(db):
    return staff(Role.ADMIN, username="admin", branch=None)


@pytest.fixture
def client_of_a(rm_a):
    return ClientFactory(client_no="A0000001", name="张三", rm=rm_a, branch=rm_a.branch,
                         phone="13812345678")


@pytest.fixture
def clients_of_b(rm_b):
    return [ClientFactory(client_no=f"B000000{i}", name=f"赵{i}", rm=rm_b, branch=rm_b.branch,
                          phone=f"1370000{i:04d}") for i in range(3)]


@pytest.fixture
def logged_in(client):
    """`logged_in(user)` -> Django test client logged in as user."""

    def _login(user):
        client.force_login(user)
        return client

    return _login


def chromium_path() -> str | None:
    return os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or shutil.which(
        "chromium-browser")


@pytest.fixture(scope="session")
def browser():
    path = chromium_path()
    if path is None:
        if services_required():
            pytest.fail("Chromium is required in CI but was not found")
        pytest.skip("Chromium not installed (apt-get install chromium); .ci/run installs it")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=path,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-quic", "--no-first-run", "--disable-component-update",
                  "--disable-sync"],
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15000)
    yield page
    context.close()


@pytest.fixture
def keep_connection():
    """Calling the WSGI app directly fires request_finished, which would close the test's
    transaction-wrapped connection on PostgreSQL; Django's own test client disconnects it too."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)
