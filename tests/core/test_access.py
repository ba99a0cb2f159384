from clients.selectors import client_queryset_for
from core.masking import mask_email, mask_phone


def test_an_rm_sees_only_their_own_book(client_of_a, clients_of_b, rm_a, rm_b):
    assert list(client_queryset_for(rm_a)) == [client_of_a]
    assert set(client_queryset_for(rm_b)) == set(clients_of_b)


def test_a_branch_manager_sees_the_branch_and_ops_see_everyone(
        client_of_a, clients_of_b, branch_manager, ops_user, compliance_user):
    assert list(client_queryset_for(branch_manager)) == [client_of_a]
    assert client_queryset_for(ops_user).count() == 4
    assert client_queryset_for(compliance_user).count() == 4


def test_a_user_without_a_role_sees_nobody(client_of_a, django_user_model):
    nobody = django_user_model.objects.create_user("nobody", password="x")
    assert client_queryset_for(nobody).count() == 0


def test_phone_and_email_are_masked():
    assert mask_phone("13812345678") == "138****5678"
    assert mask_email("zhang.san@example.com") == "z***@example.com"
