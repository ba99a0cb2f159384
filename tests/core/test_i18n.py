"""Every page is fully translated both ways: the zh_Hans catalogue is complete and compiled."""

import ast
import gettext
import re

from django.conf import settings

PO = settings.BASE_DIR / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.po"
MO = PO.with_suffix(".mo")


def _po_entries() -> list[dict]:
    """A small reader of the catalogue: msgctxt, msgid, msgstr (first plural form), flags."""
    entries, current, key = [], None, None
    for line in PO.read_text(encoding="utf-8").splitlines() + [""]:
        if not line.strip():
            if current and current.get("msgid"):
                entries.append(current)
            current, key = None, None
            continue
        current = current or {"flags": "", "msgctxt": None, "msgid": "", "msgstr": ""}
        if line.startswith("#,"):
            current["flags"] += line
        elif line.startswith("#"):
            continue
        else:
            match = re.match(
                r'^(msgctxt|msgid|msgid_plural|msgstr(?:\[0\])?|msgstr\[\d+\])\s+(".*")$', line)
            if match:
                key = {"msgstr[0]": "msgstr"}.get(match.group(1), match.group(1))
                if key == "msgid_plural":
                    current["msgid_plural"] = True
                if key in ("msgctxt", "msgid", "msgstr"):
                    current[key] = ast.literal_eval(match.group(2))
                else:
                    key = None
            elif line.startswith('"') and key:
                current[key] = (current[key] or "") + ast.literal_eval(line)
    return entries


def test_every_message_has_a_chinese_translation_and_none_is_fuzzy():
    entries = _po_entries()
    assert len(entries) > 500
    missing = [e["msgid"] for e in entries if not e["msgstr"]]
    fuzzy = [e["msgid"] for e in entries if "fuzzy" in e["flags"]]
    assert missing == [] and fuzzy == []


def test_the_compiled_catalogue_matches_the_source():
    with MO.open("rb") as handle:
        compiled = gettext.GNUTranslations(handle)
    stale = []
    for entry in _po_entries():
        if entry["msgctxt"]:
            got = compiled.pgettext(entry["msgctxt"], entry["msgid"])
        else:
            got = compiled.gettext(entry["msgid"])
        if "msgid_plural" not in entry and got != entry["msgstr"]:
            stale.append(entry["msgid"])
    assert stale == [], "run `make messages` (compilemessages) and commit the .mo"


# One English word, several meanings: each meaning has its own context (pgettext) and its own
# Chinese. The four cases a new user saw in issue 10 are pinned here.
AMBIGUOUS = ("Opened", "Phone", "Website", "Name", "Education")


def test_an_ambiguous_english_word_is_never_translated_without_its_context():
    plain = sorted(e["msgid"] for e in _po_entries()
                   if e["msgid"] in AMBIGUOUS and e["msgctxt"] is None)
    assert plain == []


def test_the_email_opened_figure_is_not_the_account_opening_date():
    from django.utils import translation

    with translation.override("zh-hans"):
        assert translation.pgettext("email statistic", "Opened") == "已打开"
        assert translation.pgettext("account opening date", "Opened") == "开户日期"


def test_phone_as_a_consent_channel_a_purchase_channel_and_a_number_each_read_right():
    from django.utils import translation

    from clients.models import SalesChannel

    with translation.override("zh-hans"):
        consent = translation.pgettext("consent channel", "Phone")
        purchase = str(SalesChannel.PHONE.label)
        number = translation.pgettext("phone number", "Phone")
    assert (consent, purchase, number) == ("电话", "电话委托", "手机号")


def test_website_as_a_purchase_channel_is_not_opening_an_account_online():
    from django.utils import translation

    from clients.models import AcquisitionChannel, SalesChannel

    with translation.override("zh-hans"):
        purchase = str(SalesChannel.WEB.label)
        acquisition = str(AcquisitionChannel.WEB.label)
    assert purchase == "网上交易" and acquisition == "官方网站"
    assert "开户" not in purchase


def test_a_segments_name_is_not_a_persons_name():
    from django.utils import translation

    with translation.override("zh-hans"):
        assert translation.pgettext("segment name", "Name") == "名称"
        assert translation.pgettext("person", "Name") == "姓名"
