"""Password guessing: repeated failures lock a login out by account and by address (django-axes),
audited, cleared by an administrator, and said on the login page in both languages."""

from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone
from rest_framework.authtoken.models import Token

from core.models import AuditAction, AuditLog, Role
from tests.conftest import PASSWORD
from tests.factories import staff

LOGIN = reverse("login")


def attempt(http, username, password="wrong-password", ip="10.0.0.7", **extra):
    return http.post(LOGIN, {"username": username, "password": password}, REMOTE_ADDR=ip,
                     **extra)


def logged_in_as(http):
    return http.get(reverse("clients:client_list")).status_code == 200


def test_five_failures_lock_the_account_even_with_the_right_password(client, rm_a):
    for _ in range(4):
        assert attempt(client, "rm_a").status_code == 200
    locked = attempt(client, "rm_a")
    assert locked.status_code == 429
    assert "core/login.html" in [t.name for t in locked.templates]
    refused = attempt(client, "rm_a", PASSWORD)
    assert refused.status_code == 429 and not logged_in_as(client)


def test_the_lockout_is_audited_once_with_who_and_where(client, rm_a):
    for _ in range(8):
        attempt(client, "rm_a", ip="10.9.8.7")
    locked = AuditLog.objects.get(action=AuditAction.LOGIN_LOCKED_OUT)
    assert locked.actor_username == "rm_a" and locked.ip == "10.9.8.7"
    assert locked.detail["username"] == "rm_a" and locked.detail["scope"] == ["account"]
    failed = AuditLog.objects.filter(action=AuditAction.LOGIN_FAILED).order_by("id")
    assert failed.count() == 8
    assert [f.detail.get("refused") for f in failed] == [None] * 5 + ["locked_out"] * 3


def test_the_account_lock_holds_from_every_address(client, rm_a):
    for i in range(5):
        attempt(client, "rm_a", ip=f"10.0.1.{i}")
    assert attempt(client, "rm_a", PASSWORD, ip="10.0.2.1").status_code == 429


def test_twenty_failures_from_one_address_lock_that_address_for_everyone(client, rm_a, rm_b):
    for i in range(19):
        assert attempt(client, f"guess{i}", ip="10.3.3.3").status_code == 200
    assert attempt(client, "guess19", ip="10.3.3.3").status_code == 429
    locked = AuditLog.objects.get(action=AuditAction.LOGIN_LOCKED_OUT)
    assert locked.detail["scope"] == ["address"] and locked.ip == "10.3.3.3"
    assert attempt(client, "rm_b", PASSWORD, ip="10.3.3.3").status_code == 429
    # The accounts themselves are not locked: from another address rm_b gets in.
    assert attempt(client, "rm_b", PASSWORD, ip="10.4.4.4").status_code == 302


def test_a_forged_forwarded_for_header_does_not_dodge_the_address_lock(client, rm_b, settings):
    settings.TRUSTED_PROXY_COUNT = 1  # behind one proxy that appends the address it saw
    for i in range(20):
        attempt(client, f"guess{i}", ip="127.0.0.1",
                HTTP_X_FORWARDED_FOR=f"192.0.2.{i}, 10.5.5.5")
    response = attempt(client, "rm_b", PASSWORD, ip="127.0.0.1",
                       HTTP_X_FORWARDED_FOR="198.51.100.1, 10.5.5.5")
    assert response.status_code == 429
    assert AuditLog.objects.get(action=AuditAction.LOGIN_LOCKED_OUT).ip == "10.5.5.5"


def test_the_lock_ends_after_the_cool_off(client, rm_a, settings):
    for _ in range(5):
        attempt(client, "rm_a")
    assert attempt(client, "rm_a", PASSWORD).status_code == 429
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=16))
    assert attempt(client, "rm_a", PASSWORD).status_code == 302
    # Axes' own clean-up of expired attempts is not an administrator's clearing.
    assert not AuditLog.objects.filter(action=AuditAction.LOCKOUT_CLEARED).exists()


@pytest.mark.parametrize("language, says", [
    ("en", "Too many failed attempts; try again in 15 minutes or ask an administrator."),
    ("zh-hans", "失败次数过多，请 15 分钟后再试，或联系管理员。"),
])
def test_the_lockout_page_says_when_to_try_again_in_both_languages(client, rm_a, language,
                                                                    says):
    for _ in range(5):
        response = attempt(client, "rm_a", HTTP_ACCEPT_LANGUAGE=language)
    assert response.status_code == 429
    assert says in response.content.decode()
    assert 'name="username" value="rm_a"' in response.content.decode()


@pytest.mark.parametrize("language, says", [
    ("en", "After 5 failed attempts the account is locked for 15 minutes."),
    ("zh-hans", "登录失败 5 次后，账户将被锁定 15 分钟。"),
])
def test_the_login_page_warns_before_any_lockout(client, language, says):
    response = client.get(LOGIN, HTTP_ACCEPT_LANGUAGE=language)
    assert response.status_code == 200 and says in response.content.decode()


def test_the_django_admin_login_counts_and_is_locked_the_same_way(client, admin_user_):
    admin_login = reverse("admin:login")
    for _ in range(5):
        response = client.post(admin_login, {"username": "admin", "password": "nope"},
                               REMOTE_ADDR="10.6.6.6")
    assert response.status_code == 429
    response = client.post(admin_login, {"username": "admin", "password": PASSWORD},
                           REMOTE_ADDR="10.6.6.6")
    assert response.status_code == 429
    assert client.get("/admin/").status_code == 302  # not logged in


def test_an_admin_clears_a_lockout_in_the_admin_and_it_is_audited(client, rm_a, admin_user_):
    for _ in range(5):
        attempt(client, "rm_a")
    [row] = AccessAttempt.objects.all()
    admin = client.__class__()
    admin.force_login(admin_user_)
    response = admin.post(reverse("admin:axes_accessattempt_changelist"),
                          {"action": "delete_selected", "_selected_action": [row.pk],
                           "post": "yes"})
    assert response.status_code == 302
    cleared = AuditLog.objects.get(action=AuditAction.LOCKOUT_CLEARED)
    assert cleared.actor == admin_user_ and cleared.detail["account"] == "rm_a"
    assert attempt(client, "rm_a", PASSWORD).status_code == 302


def test_the_reset_command_clears_a_lockout_and_it_is_audited(client, rm_a):
    for _ in range(5):
        attempt(client, "rm_a")
    call_command("axes_reset_username", "rm_a")
    cleared = AuditLog.objects.get(action=AuditAction.LOCKOUT_CLEARED)
    assert cleared.actor is None and cleared.object_id == "rm_a"
    assert attempt(client, "rm_a", PASSWORD).status_code == 302


def test_an_rm_cannot_clear_lockouts(logged_in, rm_a):
    response = logged_in(rm_a).get(reverse("admin:axes_accessattempt_changelist"))
    assert response.status_code == 302  # to the admin's login


def test_api_tokens_are_not_password_logins_and_keep_working(client, rm_a):
    service = staff(Role.OPS, username="core-banking", is_service_account=True)
    token = Token.objects.create(user=service)
    for _ in range(25):
        attempt(client, "core-banking", ip="127.0.0.1")
    response = client.get("/api/v1/clients/", HTTP_AUTHORIZATION=f"Token {token.key}",
                          REMOTE_ADDR="127.0.0.1")
    assert response.status_code == 200
    bad = client.get("/api/v1/clients/", HTTP_AUTHORIZATION="Token not-a-token",
                     REMOTE_ADDR="127.0.0.1")
    assert bad.status_code == 401
