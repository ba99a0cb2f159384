"""JSON from outside (API bodies, the rule builder) parsed with limits a database can live with.

Python's json module turns `[[[[…]]]]` a thousand deep into a RecursionError, `"\\ud800"` into a
lone surrogate (which no UTF-8 encoder — psycopg2's included — accepts), and `"\\u0000"` into a
NUL (which PostgreSQL refuses in text). `loads` refuses all three with a JSONInputError (a
ValueError) naming where: one place, used by the API's parser and by every page that takes JSON.
"""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.utils.translation import gettext as _
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from .errors import ApplicationError

MAX_DEPTH = 64


class JSONInputError(ValueError):
    """Input that is not acceptable JSON; the message says why and where (a JSON pointer).

    `field`: where, as the error envelope names fields ("rows.3.name"); "" for the whole body.
    """

    def __init__(self, message: str, *, path: str = ""):
        super().__init__(message)
        self.field = ".".join(part.replace("~1", "/").replace("~0", "~")
                              for part in path.strip("/").split("/")) if path.strip("/") else ""


def bad_text(value: str) -> str | None:
    """Why `value` cannot be stored as text (NUL, lone surrogate), or None when it can."""
    if "\x00" in value:
        return _("contains a NUL character")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return _("contains an unpaired surrogate (not valid Unicode)")
    return None


def check_value(data: Any, *, max_depth: int = MAX_DEPTH) -> None:
    """Walk parsed JSON without recursion: nesting at most `max_depth`, every text storable."""
    stack = [(data, "", 1)]
    while stack:
        node, path, depth = stack.pop()
        if isinstance(node, str):
            problem = bad_text(node)
            if problem:
                raise JSONInputError(_("The text at %(path)s %(problem)s.")
                                     % {"path": path or "/", "problem": problem}, path=path)
            continue
        if not isinstance(node, (dict, list)):
            continue
        if depth > max_depth:
            raise JSONInputError(_("JSON nests at most %(n)d levels deep; %(path)s is deeper.")
                                 % {"n": max_depth, "path": path or "/"}, path=path)
        if isinstance(node, dict):
            for key, value in node.items():
                problem = bad_text(key)
                if problem:
                    raise JSONInputError(_("A key in %(path)s %(problem)s.")
                                         % {"path": path or "/", "problem": problem},
                                         path=path)
                stack.append((value, f"{path}/{_pointer(key)}", depth + 1))
        else:
            stack.extend((value, f"{path}/{i}", depth + 1) for i, value in enumerate(node))


def _pointer(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")[:60]


def loads(text: str | bytes, *, max_depth: int = MAX_DEPTH) -> Any:
    """json.loads that never raises anything but JSONInputError for bad input."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise JSONInputError(_("The JSON is not UTF-8 text.")) from exc
    try:
        data = json.loads(text, parse_constant=_refuse_constant)
    except RecursionError:
        raise JSONInputError(_("JSON nests at most %(n)d levels deep.") % {"n": max_depth}) \
            from None
    except JSONInputError:
        raise
    except ValueError as exc:
        raise JSONInputError(_("Not valid JSON: %(error)s") % {"error": exc}) from None
    check_value(data, max_depth=max_depth)
    return data


def _refuse_constant(name: str):
    raise JSONInputError(_("%(name)s is not a JSON number.") % {"name": name})


class SafeJSONParser(JSONParser):
    """The API's JSON parser: bad JSON, deep nesting, NUL and lone surrogates are a 400
    (core.api's handler turns the ApplicationError into the error envelope, naming the field)."""

    def parse(self, stream, media_type=None, parser_context=None):
        parser_context = parser_context or {}
        encoding = parser_context.get("encoding", settings.DEFAULT_CHARSET)
        try:
            raw = stream.read() if stream is not None else b""
            return loads(raw.decode(encoding) if isinstance(raw, bytes) else raw)
        except UnicodeDecodeError as exc:
            raise ParseError(_("The JSON is not %(encoding)s text.") % {"encoding": encoding}) \
                from exc
        except JSONInputError as exc:
            fields = {exc.field: [str(exc)]} if exc.field else {}
            raise ApplicationError(str(exc), code="parse_error", fields=fields) from None
