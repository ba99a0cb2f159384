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
