import datetime as dt
from decimal import Decimal

import factory
from django.utils import timezone

from clients.models import Client, Holding, Interaction, Product, Transaction
from core.models import Branch, Role, User
from core.services import user_set_role


class BranchFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Branch
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"B{n:03d}")
    name = factory.Sequence(lambda n: f"营业部{n}")
    city = "上海"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    display_name = factory.LazyAttribute(lambda o: o.username)
    branch = factory.SubFactory(BranchFactory)
    password = factory.PostGenerationMethodCall("set_password", "pw-Secret-123")

    @factory.post_generation
    def role(self, create, extracted, **kwargs):
        self.save()
        if extracted:
            user_set_role(user=self, role=extracted)


def staff(role: Role | str, **kwargs) -> User:
    return UserFactory(role=str(role), **kwargs)


class ClientFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Client

    client_no = factory.Sequence(lambda n: f"C{n:08d}")
    name = factory.Sequence(lambda n: f"客户{n}")
    gender = "F"
    birth_date = dt.date(1980, 5, 17)
    phone = factory.Sequence(lambda n: f"139{n:08d}")
    email = factory.Sequence(lambda n: f"client{n}@example.com")
    city = "上海"
    occupation = "employee"
    industry = "technology"
    branch = factory.SubFactory(BranchFactory)
    rm = None
    opened_on = dt.date(2020, 1, 1)
    risk_level = "C3"
    risk_assessed_on = factory.LazyFunction(lambda: timezone.localdate() - dt.timedelta(days=100))
    risk_expires_on = factory.LazyFunction(lambda: timezone.localdate() + dt.timedelta(days=265))
    aum = Decimal("120000.00")
    consent_email = True


class ProductFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Product
        django_get_or_create = ("product_code",)

    product_code = factory.Sequence(lambda n: f"P{n:05d}")
    name = factory.Sequence(lambda n: f"稳健债券{n}号")
    product_type = "fixed_income"
    risk_level = "R2"


class HoldingFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Holding

    client = factory.SubFactory(ClientFactory)
    product = factory.SubFactory(ProductFactory)
    as_of = dt.date(2026, 10, 31)
    quantity = Decimal("1000")
    market_value = Decimal("10500.00")


class TransactionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Transaction

    txn_id = factory.Sequence(lambda n: f"T{n:010d}")
    client = factory.SubFactory(ClientFactory)
    product = factory.SubFactory(ProductFactory)
    traded_at = factory.LazyFunction(lambda: timezone.now() - dt.timedelta(days=10))
    amount = Decimal("20000.00")
    revenue = Decimal("100.00")
    channel = "app"


class InteractionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Interaction

    client = factory.SubFactory(ClientFactory)
    author = factory.SubFactory(UserFactory)
    kind = "call"
    outcome = "reached"
    note = "回访"
