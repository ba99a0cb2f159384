import os
import subprocess
import sys
from datetime import timedelta

from django.conf import settings
from django.contrib.sessions.models import Session
from django.utils import timezone

from core.models import AuditAction, AuditLog
from tests.conftest import PASSWORD


def test_a_login_and_a_failed_login_are_audited_with_where_from(client, rm_a):
    client.post("/accounts/login/", {"username": "rm_a", "password": "wrong"},
                REMOTE_ADDR="10.1.2.3")
    client.post("/accounts/login/", {"username": "rm_a", "password": PASSWORD},
                REMOTE_ADDR="10.1.2.3")
    failed = AuditLog.objects.get(action=AuditAction.LOGIN_FAILED)
    assert failed.detail["username"] == "rm_a" and failed.ip == "10.1.2.3"
    ok = AuditLog.objects.get(action=AuditAction.LOGIN)
    assert ok.actor == rm_a and ok.ip == "10.1.2.3"


def test_a_session_ends_after_thirty_idle_minutes_and_each_request_extends_it(client, rm_a):
    assert settings.SESSION_COOKIE_AGE == 30 * 60
    client.post("/accounts/login/", {"username": "rm_a", "password": PASSWORD})
    client.get("/clients/")
    session = Session.objects.get()
    assert session.expire_date <= timezone.now() + timedelta(minutes=30, seconds=5)

    Session.objects.update(expire_date=timezone.now() + timedelta(minutes=1))
    client.get("/clients/")
    assert Session.objects.get().expire_date > timezone.now() + timedelta(minutes=29)

    Session.objects.update(expire_date=timezone.now() - timedelta(seconds=1))
    response = client.get("/clients/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_forms_are_protected_by_csrf(rm_a, client_of_a):
    from django.test import Client as HttpClient

    http = HttpClient(enforce_csrf_checks=True)
    http.force_login(rm_a)
    response = http.post(f"/clients/{client_of_a.client_no}/interactions/",
                         {"kind": "call", "outcome": "reached", "note": "x"})
    assert response.status_code == 403


def test_check_deploy_is_clean_under_production_settings():
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"}
    env = {**env, "DJANGO_SETTINGS_MODULE": "config.settings.production",
           "SECRET_KEY": "k" * 20 + "Zq8#vW2!xR9@pL5$tY7&uI3*oP1^aS6%dF4",
           "ALLOWED_HOSTS": "crm.example.com"}
    result = subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level",
                             "WARNING"], cwd=settings.BASE_DIR, env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout
    # The same production settings send the Content-Security-Policy (issue 9).
    probe = ("import django; django.setup(); from django.test import Client; "
             "r = Client(HTTP_HOST='crm.example.com').get('/accounts/login/', secure=True); "
             "print(r.status_code, r['Content-Security-Policy'])")
    result = subprocess.run([sys.executable, "-c", probe], cwd=settings.BASE_DIR, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("200 "), result.stdout
    assert "script-src 'self'" in result.stdout and "unsafe" not in result.stdout, result.stdout


def test_one_denied_request_writes_exactly_one_audit_row(logged_in, rm_a, clients_of_b):
    http = logged_in(rm_a)
    other = clients_of_b[0]
    assert http.get(f"/api/v1/clients/{other.client_no}/").status_code == 404
    assert http.get(f"/clients/{other.client_no}/").status_code == 404
    denied = AuditLog.objects.filter(action=AuditAction.ACCESS_DENIED, actor=rm_a)
    assert denied.count() == 2
    assert set(denied.values_list("object_id", flat=True)) == {other.client_no}
