from clients.models import Client


def test_an_admin_can_correct_a_client_in_the_back_office(logged_in, admin_user_, client_of_a):
    http = logged_in(admin_user_)
    assert http.get("/admin/clients/client/?q=5678").status_code == 200
    page = http.get(f"/admin/clients/client/{client_of_a.pk}/change/")
    assert page.status_code == 200
    data = {f: getattr(client_of_a, f) or "" for f in (
        "client_no", "name", "gender", "birth_date", "phone", "email", "id_number", "city",
        "occupation", "industry", "employer", "education", "opened_on", "status",
        "source_channel", "risk_level", "risk_assessed_on", "risk_expires_on", "investor_type",
        "aum", "first_funded_on", "last_purchase_on", "consent_updated_at")}
    data.update({"name": "张三丰", "phone": "13900001111", "rm": client_of_a.rm_id,
                 "branch": client_of_a.branch_id, "has_children": "unknown",
                 "consent_email": "on"})
    response = http.post(f"/admin/clients/client/{client_of_a.pk}/change/", data)
    assert response.status_code == 302, response.content.decode()[:2000]
    client_of_a.refresh_from_db()
    assert client_of_a.name == "张三丰" and client_of_a.phone_tail == "1111"


def test_an_rm_cannot_open_the_admin(logged_in, rm_a):
    response = logged_in(rm_a).get("/admin/clients/client/")
    assert response.status_code == 302
    assert Client.objects.count() == 0


def test_the_admin_list_masks_phones_and_opening_a_client_is_audited(logged_in, admin_user_,
                                                                      client_of_a):
    from core.models import AuditAction, AuditLog

    http = logged_in(admin_user_)
    listing = http.get("/admin/clients/client/").content.decode()
    assert "138****5678" in listing and "13812345678" not in listing
    assert not AuditLog.objects.filter(action=AuditAction.PII_VIEWED).exists()

    for _ in range(2):
        page = http.get(f"/admin/clients/client/{client_of_a.pk}/change/")
        assert page.status_code == 200 and "13812345678" in page.content.decode()
    views = AuditLog.objects.filter(action=AuditAction.PII_VIEWED)
    assert views.count() == 2
    view = views.first()
    assert view.actor == admin_user_ and view.object_type == "client"
    assert view.object_id == "A0000001" and view.detail["via"] == "admin"
    assert view.path == f"/admin/clients/client/{client_of_a.pk}/change/"


def test_opening_a_delivery_in_the_admin_is_audited_too(logged_in, admin_user_, rm_a):
    from core.models import AuditAction, AuditLog
    from newsletters.models import Delivery
    from tests.newsletters.test_dispatch import freeze, make_audience, make_edition

    segment, _, _ = make_audience(size=1, rm=rm_a, excluded={})
    freeze(make_edition(segment=segment, author=rm_a))
    delivery = Delivery.objects.select_related("client").first()
    page = logged_in(admin_user_).get(f"/admin/outreach/delivery/{delivery.pk}/change/")
    assert page.status_code == 200
    view = AuditLog.objects.get(action=AuditAction.PII_VIEWED)
    assert view.object_id == delivery.client.client_no and view.detail["fields"] == ["to_email"]
