"""What a file of each kind looks like: its columns, keys and how each column is checked.

Choices and maximum lengths come from the model fields (`Model._meta`), so a rule lives in one
place: change a model's choices or max_length and the import follows.
"""

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd
from django.core.exceptions import FieldDoesNotExist
from django.db import models
from django.utils.translation import gettext as _

from core.errors import ApplicationError
from core.models import Branch, User

from ..models import CashFlow, CashFlowKind, Client, Holding, ImportKind, Product, Transaction

# How a column is parsed and checked.
TEXT, CHOICE, DATE, DATETIME, DECIMAL, BOOL, REF = (
    "text",
    "choice",
    "date",
    "datetime",
    "decimal",
    "bool",
    "ref",
)


@dataclass(frozen=True)
class Reference:
    """A column naming another row by its key: stored as that row's id."""

    model: type[models.Model]
    key: str


@dataclass(frozen=True)
class Column:
    name: str
    field: models.Field
    type: str
    required: bool = False
    reference: Reference | None = None
    signed: bool = False  # a decimal that may be negative (a cash flow's amount)

    @property
    def attname(self) -> str:
        """The database column the value ends up in (`client` -> `client_id`)."""
        return self.field.attname

    @property
    def max_length(self) -> int | None:
        return None if self.type == REF else getattr(self.field, "max_length", None)

    @cached_property
    def choices(self) -> tuple[str, ...]:
        return tuple(str(value) for value, _ in (self.field.choices or ()))


# A rule across the columns of a row, checked once every column parsed:
# check(values, usable) yields (rows at fault, column named, message). `values` maps a column's
# name to its parsed values; `usable[name]` marks the rows whose value in that column is
# present and passed its own checks (a row already wrong there is not reported twice).
RowCheck = Callable[[dict[str, pd.Series], dict[str, np.ndarray]],
                    Iterator[tuple[np.ndarray, str, str]]]


@dataclass(frozen=True)
class KindSpec:
    kind: str
    model: type[models.Model]
    columns: tuple[Column, ...]
    keys: tuple[str, ...]  # column names forming the upsert key
    example: dict[str, str] = field(default_factory=dict)
    checks: tuple[RowCheck, ...] = ()

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def required(self) -> list[str]:
        return [c.name for c in self.columns if c.required]

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)


_REFERENCES = {
    "client_no": Reference(Client, "client_no"),
    "product_code": Reference(Product, "product_code"),
    "branch": Reference(Branch, "code"),
    "rm": Reference(User, "username"),
}
# File column -> model field, where the names differ.
_FIELD_OF = {"client_no": "client", "product_code": "product"}


def _column_type(f: models.Field) -> str:
    if isinstance(f, models.ForeignKey):
        return REF
    if f.choices:
        return CHOICE
    if isinstance(f, models.DateTimeField):
        return DATETIME
    if isinstance(f, models.DateField):
        return DATE
    if isinstance(f, models.DecimalField):
        return DECIMAL
    if isinstance(f, models.BooleanField):
        return BOOL
    return TEXT


def _spec(
    kind: str,
    model: type[models.Model],
    names: list[str],
    *,
    required: list[str],
    keys: list[str],
    example: dict[str, str],
    signed: tuple[str, ...] = (),
    checks: tuple[RowCheck, ...] = (),
) -> KindSpec:
    columns = []
    for name in names:
        try:
            f = model._meta.get_field(name)
        except FieldDoesNotExist:
            f = model._meta.get_field(_FIELD_OF[name])
        type_ = _column_type(f)
        columns.append(
            Column(
                name=name,
                field=f,
                type=type_,
                required=name in required,
                reference=_REFERENCES.get(name) if type_ == REF else None,
                signed=name in signed,
            )
        )
    return KindSpec(
        kind=kind,
        model=model,
        columns=tuple(columns),
        keys=tuple(keys),
        example=example,
        checks=checks,
    )


# Half a fen rounds to zero or to one fen depending on the database; anything smaller than
# this is refused as zero rather than left to the rounding (and the non-zero constraint).
_LESS_THAN_A_FEN = 0.00501


def cash_flow_amount_check(
    values: dict[str, pd.Series], usable: dict[str, np.ndarray]
) -> Iterator[tuple[np.ndarray, str, str]]:
    """The sign of a cash flow is its direction (CashFlow's constraints): never zero, a
    deposit in (> 0), a withdrawal out (< 0), a transfer either way."""
    amount = pd.to_numeric(values["amount"], errors="coerce").to_numpy(dtype=float)
    kind = values["kind"].to_numpy(dtype=object)
    has_amount = usable["amount"] & np.isfinite(amount)
    with np.errstate(invalid="ignore"):
        zero = has_amount & (np.abs(amount) < _LESS_THAN_A_FEN)
        signed = has_amount & ~zero & usable["kind"]
        yield (zero, "amount",
               _("Must not be zero: positive for money in, negative for money out."))
        yield (signed & (kind == CashFlowKind.DEPOSIT) & (amount < 0), "amount",
               _("A deposit is money in: its amount must be positive."))
        yield (signed & (kind == CashFlowKind.WITHDRAWAL) & (amount > 0), "amount",
               _("A withdrawal is money out: its amount must be negative."))


SPECS: dict[str, KindSpec] = {
    ImportKind.CLIENTS: _spec(
        ImportKind.CLIENTS,
        Client,
        [
            "client_no",
            "name",
            "gender",
            "birth_date",
            "phone",
            "email",
            "city",
            "occupation",
            "industry",
            "employer",
            "education",
            "has_children",
            "branch",
            "rm",
            "risk_level",
            "risk_assessed_on",
            "risk_expires_on",
            "investor_type",
            "opened_on",
            "status",
            "aum",
            "consent_email",
            "consent_sms",
            "consent_phone",
            "source_channel",
            "id_number",
        ],
        required=["client_no", "name"],
        keys=["client_no"],
        example={
            "client_no": "C00000001",
            "name": "张三",
            "gender": "M",
            "birth_date": "1980-05-17",
            "phone": "13812345678",
            "email": "zhangsan@example.com",
            "city": "上海",
            "occupation": "employee",
            "industry": "technology",
            "employer": "",
            "education": "bachelor",
            "has_children": "yes",
            "branch": "",
            "rm": "",
            "risk_level": "C3",
            "risk_assessed_on": "2026-01-10",
            "risk_expires_on": "2027-01-10",
            "investor_type": "ordinary",
            "opened_on": "2020-01-01",
            "status": "active",
            "aum": "120000.00",
            "consent_email": "yes",
            "consent_sms": "no",
            "consent_phone": "no",
            "source_channel": "app",
            "id_number": "",
        },
    ),
    ImportKind.PRODUCTS: _spec(
        ImportKind.PRODUCTS,
        Product,
        ["product_code", "name", "product_type", "risk_level", "is_active", "maturity_date"],
        required=["product_code", "name", "product_type", "risk_level"],
        keys=["product_code"],
        example={
            "product_code": "P00001",
            "name": "稳健债券1号",
            "product_type": "fixed_income",
            "risk_level": "R2",
            "is_active": "yes",
            "maturity_date": "2028-06-30",
        },
    ),
    ImportKind.HOLDINGS: _spec(
        ImportKind.HOLDINGS,
        Holding,
        ["client_no", "product_code", "as_of", "quantity", "market_value", "maturity_date"],
        required=["client_no", "product_code", "as_of", "quantity", "market_value"],
        keys=["client_no", "product_code", "as_of"],
        example={
            "client_no": "C00000001",
            "product_code": "P00001",
            "as_of": "2026-10-31",
            "quantity": "1000",
            "market_value": "10500.00",
            "maturity_date": "2026-11-20",
        },
    ),
    ImportKind.TRANSACTIONS: _spec(
        ImportKind.TRANSACTIONS,
        Transaction,
        ["txn_id", "client_no", "product_code", "traded_at", "amount", "revenue", "channel"],
        required=["txn_id", "client_no", "product_code", "traded_at", "amount"],
        keys=["txn_id"],
        example={
            "txn_id": "T0000000001",
            "client_no": "C00000001",
            "product_code": "P00001",
            "traded_at": "2026-10-15 10:30:00",
            "amount": "20000.00",
            "revenue": "100.00",
            "channel": "app",
        },
    ),
    ImportKind.CASH_FLOWS: _spec(
        ImportKind.CASH_FLOWS,
        CashFlow,
        ["flow_id", "client_no", "at", "amount", "kind"],
        required=["flow_id", "client_no", "at", "amount", "kind"],
        keys=["flow_id"],
        signed=("amount",),
        checks=(cash_flow_amount_check,),
        example={
            "flow_id": "CF0000000001",
            "client_no": "C00000001",
            "at": "2026-10-15 09:45:00",
            "amount": "200000.00",
            "kind": "deposit",
        },
    ),
}


def spec_for(kind: str) -> KindSpec:
    try:
        return SPECS[kind]
    except KeyError:
        raise ApplicationError(
            f"Unknown import kind {kind!r}; one of {', '.join(SPECS)}.",
            fields={"kind": ["invalid"]},
        ) from None
