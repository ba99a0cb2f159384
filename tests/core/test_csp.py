"""The Content-Security-Policy: every response of every route carries one that allows scripts
from our own files only (no inline script, no eval), and no template puts a script or an
event handler inline, so a missed escape cannot run.

Routes come from the URL configuration (like tests/core/test_access_matrix.py), so a route
added tomorrow is covered the day it is added."""

import re
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib import admin
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from tests.factories import ClientFactory

TEMPLATES = Path(settings.BASE_DIR) / "templates"
# Outgoing email is not a page: its HTML goes to mail clients (and to the preview iframe, which
# has its own policy that forbids every script); the page policy does not apply to it.
EMAIL_TEMPLATES = TEMPLATES / "newsletters" / "email"


def _walk(patterns, prefix=""):
    for p in patterns:
        if isinstance(p, URLResolver):
            yield from _walk(p.url_patterns, prefix + str(p.pattern))
        elif isinstance(p, URLPattern):
            yield prefix + str(p.pattern)


def _fill(route: str, client_no: str) -> str | None:
    """A path for a route: client numbers of a real client, other arguments a plausible value
    (a 404 must carry the policy as much as a 200). None for the admin's regex routes, which
    the admin's own list below covers."""
    if "(?P" in route or route.startswith("admin/"):
        return None
    path = route.replace("^", "").replace("$", "").replace("\\", "")
    path = re.sub(r"<(?:str:)?client_no>", client_no, path)
    path = re.sub(r"<int:[^>]+>", "1", path)
    path = re.sub(r"<(?:str|slug):[^>]+>", "x", path)
    path = re.sub(r"<[^>]+>", "x", path)
    return "/" + path


def page_paths(client_no: str) -> list[str]:
    paths = {_fill(r, client_no) for r in _walk(get_resolver().url_patterns)}
    paths.discard(None)
    # The admin: its index and every model's list and add form.
    paths.add(reverse("admin:index"))
    for model in admin.site._registry:
        meta = model._meta
        paths.add(reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist"))
        paths.add(reverse(f"admin:{meta.app_label}_{meta.model_name}_add"))
    return sorted(paths)


def directives(header: str) -> dict[str, list[str]]:
    out = {}
    for part in header.split(";"):
        words = part.split()
        if words:
            out[words[0].lower()] = words[1:]
    return out


def assert_strict_script_policy(path: str, header: str | None) -> None:
    assert header, f"{path}: no Content-Security-Policy"
    policy = directives(header)
    scripts = policy.get("script-src", policy.get("default-src"))
    assert scripts, (path, header)
    assert "'unsafe-inline'" not in scripts and "'unsafe-eval'" not in scripts, (path, header)
    assert set(scripts) <= {"'self'", "'none'"}, (path, header)
    assert "script-src-attr" not in policy and "script-src-elem" not in policy, (path, header)
    assert policy.get("object-src") == ["'none'"] or policy.get("default-src") == ["'none'"], \
        (path, header)


def test_the_site_policy_is_the_one_promised():
    policy = directives(_site_header())
    assert policy["default-src"] == ["'self'"]
    assert policy["script-src"] == ["'self'"]
    assert policy["style-src"] == ["'self'"]
    assert policy["img-src"] == ["'self'", "data:"]
    assert policy["object-src"] == ["'none'"]
    assert policy["base-uri"] == ["'self'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["form-action"] == ["'self'"]


def _site_header() -> str:
    from django.test import Client as HttpClient

    return HttpClient().get("/accounts/login/")["Content-Security-Policy"]


@pytest.mark.parametrize("role_fixture", ["admin_user_", "rm_a", "compliance_user", None])
def test_every_route_answers_with_a_policy_that_forbids_inline_script_and_eval(
        request, role_fixture, client, client_of_a):
    if role_fixture:
        client.force_login(request.getfixturevalue(role_fixture))
    paths = page_paths(client_of_a.client_no)
    assert len(paths) > 80, paths
    html_pages = 0
    for path in paths:
        response = client.get(path)
        assert response.status_code < 500, (path, response.status_code)
        assert_strict_script_policy(path, response.get("Content-Security-Policy"))
        if response.status_code == 200 and "text/html" in response.get("Content-Type", ""):
            html_pages += 1
    if role_fixture == "admin_user_":
        assert html_pages > 30, html_pages  # the pages themselves, not only redirects and 404s


def test_main_pages_and_the_api_docs_answer_200_under_the_policy(logged_in, admin_user_,
                                                                 client_of_a):
    http = logged_in(admin_user_)
    for path in ("/clients/", f"/clients/{client_of_a.client_no}/", "/segments/",
                 "/segments/personas/", "/segments/new/", "/scoring/", "/newsletters/",
                 "/tasks/", "/accounts/audit/", "/admin/", "/admin/clients/client/",
                 "/api/docs/"):
        response = http.get(path)
        assert response.status_code == 200, (path, response.status_code)
        assert_strict_script_policy(path, response["Content-Security-Policy"])


def test_the_api_docs_page_has_no_inline_script_and_only_its_style_block_is_allowed(
        logged_in, admin_user_):
    http = logged_in(admin_user_)
    response = http.get("/api/docs/")
    body = response.content.decode()
    for tag in re.findall(r"<script\b[^>]*>", body):
        assert "src=" in tag, tag
    policy = directives(response["Content-Security-Policy"])
    assert policy["script-src"] == ["'self'"]
    assert "'unsafe-inline'" in policy["style-src"]  # the UI's one <style> block
    script = http.get("/api/docs/?script=")
    assert script.status_code == 200 and "SwaggerUIBundle" in script.content.decode()


def test_the_email_preview_frame_keeps_its_own_policy_that_forbids_all_script():
    from newsletters.views import PREVIEW_CSP

    policy = directives(PREVIEW_CSP)
    assert policy["default-src"] == ["'none'"] and "script-src" not in policy


def test_a_client_name_with_markup_is_escaped_in_the_allocation_data(logged_in, rm_a):
    ClientFactory(client_no="X0000001", name='</script><script>window.__xss=1</script>',
                  rm=rm_a, branch=rm_a.branch)
    body = logged_in(rm_a).get("/clients/X0000001/").content.decode()
    assert "<script>window.__xss=1" not in body


# --- the templates ------------------------------------------------------------------------------

def _page_templates():
    for path in sorted(TEMPLATES.rglob("*.html")):
        if EMAIL_TEMPLATES in path.parents:
            continue
        yield path


SCRIPT_TAG = re.compile(r"<script\b([^>]*)>", re.IGNORECASE)
EVENT_ATTR = re.compile(r"""<[a-zA-Z][^>]*?\son[a-z]+\s*=""", re.IGNORECASE | re.DOTALL)
HX_ON = re.compile(r"""\shx-on[:\-a-z]*\s*=""", re.IGNORECASE)
JS_URL = re.compile(r"""(?:href|src|action|formaction)\s*=\s*["']?\s*javascript:""", re.IGNORECASE)
STYLE = re.compile(r"""<style\b|\sstyle\s*=""", re.IGNORECASE)


def test_the_template_scan_finds_the_templates():
    names = {p.relative_to(TEMPLATES).as_posix() for p in _page_templates()}
    assert "base.html" in names and "segments/persona_overview.html" in names
    assert not any(n.startswith("newsletters/email/") for n in names)


@pytest.mark.parametrize("path", list(_page_templates()),
                         ids=lambda p: str(p.relative_to(TEMPLATES)))
def test_no_template_has_inline_script_event_handlers_or_inline_styles(path):
    text = path.read_text(encoding="utf-8")
    for attrs in SCRIPT_TAG.findall(text):
        assert "src=" in attrs or 'type="application/json"' in attrs, (path, attrs)
    assert not EVENT_ATTR.search(text), (path, EVENT_ATTR.search(text).group(0))
    assert not HX_ON.search(text), path
    assert not JS_URL.search(text), path
    assert not STYLE.search(text), (path, STYLE.search(text).group(0))


def test_the_scan_would_catch_each_kind_of_inline_code():
    for bad in ('<script>alert(1)</script>', '<button onclick="x()">', '<a hx-on:click="x">',
                '<a href="javascript:x()">', '<div style="width: 1px">', "<style>a{}</style>"):
        caught = (any("src=" not in a and "application/json" not in a
                      for a in SCRIPT_TAG.findall(bad))
                  or EVENT_ATTR.search(bad) or HX_ON.search(bad) or JS_URL.search(bad)
                  or STYLE.search(bad))
        assert caught, bad
    assert not EVENT_ATTR.search('<input data-confirm="x" name="on">')


def test_htmx_runs_without_eval_and_injects_no_style():
    base = (TEMPLATES / "base.html").read_text(encoding="utf-8")
    meta = re.search(r"""<meta name="htmx-config" content='([^']+)'>""", base)
    assert meta, "htmx-config meta tag missing"
    import json

    config = json.loads(meta.group(1))
    assert config["allowEval"] is False and config["includeIndicatorStyles"] is False
    assert base.index('name="htmx-config"') < base.index("htmx.min.js")


def _braced(text: str, start: int) -> str:
    """The text of the {...} block that opens at text[start]."""
    depth = 0
    for i in range(start, len(text)):
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        if depth == 0:
            return text[start:i + 1]
    raise AssertionError("unbalanced braces")


def test_every_echarts_formatter_escapes_what_it_prints():
    """A function formatter returns HTML that ECharts puts in with innerHTML: each one in our
    scripts builds it with CRM.tooltip / CRM.axisTooltip (which escape), never by hand."""
    scripts = Path(settings.BASE_DIR) / "static" / "js"
    found = 0
    for path in sorted(scripts.glob("*.js")):
        text = path.read_text(encoding="utf-8")
        for m in re.finditer(r"tooltip:\s*\{", text):
            found += 1
            block = _braced(text, m.end() - 1)
            assert "formatter" in block, (path.name, block)
            assert "CRM.tooltip" in block or "CRM.axisTooltip" in block, (path.name, block)
            assert "<br" not in block and "+ \"<" not in block, (path.name, block)
        assert not re.search(r"\.(innerHTML|outerHTML)\s*\+?=|insertAdjacentHTML\(|document\.write",
                             text), path.name  # our scripts build DOM with textContent
    assert found >= 8, found
