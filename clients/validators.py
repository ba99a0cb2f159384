"""What a number or a date from outside may look like: one rule for the API and the import.

Python's Decimal() and int() read "1_000" and Arabic-Indic digits ("١٠٠٠"), and datetimes of
year 1 overflow when moved to UTC (or back to Beijing time for display). A core system's export
never means either, so both are refused with a field error before anything is stored.
"""

import datetime as dt
import re

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from rest_framework import serializers

# ASCII digits only, an optional sign, decimal point and exponent; no "_", no spaces inside.
PLAIN_NUMBER = r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
PLAIN_NUMBER_RE = re.compile(PLAIN_NUMBER)

DATE_MIN = dt.date(1900, 1, 1)
# 9999-12-31 is how core systems write "never expires"; a date and time stops a day earlier so
# that moving it between UTC and Beijing time (or any offset) cannot overflow.
DATE_MAX = dt.date(9999, 12, 31)
DATETIME_MAX = dt.date(9999, 12, 30)


def plain_number_message() -> str:
    return _("Not a number: write it with the digits 0-9 only (e.g. 120000.50), without "
             "separators, spaces or other scripts' digits.")


def date_range_message(*, with_time: bool = False) -> str:
    high = DATETIME_MAX if with_time else DATE_MAX
    return _("Must be between %(min)s and %(max)s.") % {"min": DATE_MIN.isoformat(),
                                                       "max": high.isoformat()}


def is_plain_number(text: str) -> bool:
    return PLAIN_NUMBER_RE.fullmatch(text.strip()) is not None


def validate_plausible_date(value) -> None:
    with_time = isinstance(value, dt.datetime)
    day = value.date() if with_time else value
    if day is not None and not (DATE_MIN <= day <= (DATETIME_MAX if with_time else DATE_MAX)):
        raise ValidationError(date_range_message(with_time=with_time), code="date_range")


class PlainDecimalField(serializers.DecimalField):
    """DecimalField that takes a JSON number or a plain ASCII decimal string, nothing else."""

    def to_internal_value(self, data):
        if isinstance(data, str) and not is_plain_number(data):
            raise serializers.ValidationError(plain_number_message(), code="invalid")
        return super().to_internal_value(data)


class PlainIntegerField(serializers.IntegerField):
    """IntegerField that takes a JSON number or a plain ASCII integer string."""

    def to_internal_value(self, data):
        if isinstance(data, str) and not is_plain_number(data):
            raise serializers.ValidationError(plain_number_message(), code="invalid")
        return super().to_internal_value(data)


class PlainFloatField(serializers.FloatField):
    """FloatField that takes a JSON number or a plain ASCII decimal string."""

    def to_internal_value(self, data):
        if isinstance(data, str) and not is_plain_number(data):
            raise serializers.ValidationError(plain_number_message(), code="invalid")
        return super().to_internal_value(data)


class PlainNumbersSerializer(serializers.ModelSerializer):
    """ModelSerializer whose model decimals and integers read plain ASCII numbers only, and
    whose dates lie between DATE_MIN and DATE_MAX."""

    def build_standard_field(self, field_name, model_field):
        field_class, kwargs = super().build_standard_field(field_name, model_field)
        if issubclass(field_class, serializers.DecimalField):
            field_class = PlainDecimalField
        elif field_class is serializers.IntegerField:
            field_class = PlainIntegerField
        elif issubclass(field_class, (serializers.DateField, serializers.DateTimeField)):
            kwargs["validators"] = [*kwargs.get("validators", []), validate_plausible_date]
        return field_class, kwargs
