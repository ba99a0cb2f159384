"""The client list fits a 1,440 px window in both languages, and no filter label is cut
(issue 10: it was 1,746 px wide and scrolled sideways; English labels were truncated)."""

from pathlib import Path

import pytest
from django.conf import settings

from tests.clients.test_scoring_browser import log_in
from tests.factories import ClientFactory

SCREENSHOTS = Path(settings.BASE_DIR) / "var" / "screenshots"


@pytest.fixture
def long_rows(transactional_db, ops_user, rm_a, rm_b):
    for i, rm in enumerate([rm_a, rm_b] * 3):
        ClientFactory(client_no=f"W00000{i:02d}", name=f"欧阳长名字客户{i}号", rm=rm,
                      branch=rm.branch, phone=f"1380000{i:04d}")


@pytest.mark.browser
@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_the_client_list_fits_1440_px_and_its_filter_labels_are_whole(page, live_server,
                                                                       long_rows, language):
    page.set_viewport_size({"width": 1440, "height": 900})
    log_in(page, live_server, "ops", language)
    page.goto(f"{live_server.url}/clients/")
    page.locator(".client-table tbody tr").first.wait_for()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"client_list_1440_{language}.png"), full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth") <= 1440
    table = page.evaluate("""() => { const w = document.querySelector('.client-table')
        .closest('.table-responsive, .card'); return [w.scrollWidth, w.clientWidth]; }""")
    assert table[0] <= table[1], table  # no sideways scroll inside the card either
    cut = page.evaluate("""() => [...document.querySelectorAll('#client-filters label')]
        .filter(l => l.scrollWidth > l.clientWidth + 1).map(l => l.textContent.trim())""")
    assert cut == []
