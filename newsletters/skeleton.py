"""Render one product template for thousands of clients at the cost of a string join.

An edition's templates are the same for every client. What differs is the printed values
(names, amounts, signed links) and the *shape* (which sections are there, how many positions,
which optional parts are empty). `SkeletonTemplate` renders the real Django template ONCE per
shape, with every printed value replaced by an inert sentinel. It splits that output at the
sentinels and, for each client, joins the pieces with the client's own values, escaped exactly
as the template engine escapes them at that spot (`render_value_in_context`; inside
`{% autoescape off %}` not at all). The template stays the one source of truth for what a
client reads.

What may vary per client without a new shape is read from the compiled template:
- a value that is only printed (`{{ x.y }}`, `{% blocktranslate with n=x.y %}`) or tested for
  truth (`{% if x.y %}`) becomes a sentinel;
- a value the template compares (`==`, `in`, ...), passes through a filter or gives to a tag
  argument is part of the shape, as it is;
- falsy values (empty text, 0, None, False, empty lists) are part of the shape, so every
  `{% if %}` takes the branch the real value takes;
- keys the template never names are dropped.
A template with a tag this module does not know is always rendered the ordinary way. The first
time a shape is seen, the ordinary render of that context is compared with the skeleton's; if
they differ the shape is rendered the ordinary way from then on (and a warning is logged), so a
template change this analysis misses can cost speed, never a wrong email.
"""

from __future__ import annotations

import logging
import re
import secrets
import threading
from collections import OrderedDict
from decimal import Decimal
from html import escape as _html_escape

from django.template.base import (
    FilterExpression,
    TextNode,
    TokenType,
    Variable,
    VariableNode,
)
from django.template.defaulttags import (
    AutoEscapeControlNode,
    CommentNode,
    ForNode,
    IfNode,
    LoadNode,
    TemplateLiteral,
)
from django.templatetags.i18n import BlockTranslateNode, TranslateNode
from django.utils.formats import localize
from django.utils.html import conditional_escape
from django.utils.safestring import SafeString
from django.utils.timezone import get_current_timezone_name
from django.utils.translation import get_language

log = logging.getLogger(__name__)

_PREFIX = f"nlV{secrets.token_hex(6)}q"  # per process: no editor or client can type it
_SENTINEL = re.compile(re.escape(_PREFIX) + r"(\d+)([er])")
_LOGICAL = {"or", "and", "not"}
MAX_SHAPES = 512


class Unsupported(Exception):
    """The template (or a value) is outside what a skeleton can reproduce exactly."""


class _Sentinel(str):
    """Prints as `…r` where the engine does not escape and as `…e` where it does."""

    __slots__ = ("escaped",)

    def __new__(cls, index: int):
        self = super().__new__(cls, f"{_PREFIX}{index}r")
        self.escaped = f"{_PREFIX}{index}e"
        return self

    def __html__(self):
        return self.escaped


# --- reading the template: which paths of the context it uses, and how -----------------------

class _Spec:
    """One path of the context as the template uses it."""

    __slots__ = ("children", "items", "printed", "literal", "whole")

    def __init__(self, *, whole: bool = False):
        self.children: dict[str, _Spec] = {}
        self.items: _Spec | None = None  # the elements, when the template loops over it
        self.printed = False
        self.literal = False  # compared, filtered or given to a tag: part of the shape
        self.whole = whole  # everything below is used (tuple unpacking in a loop)

    def child(self, key: str) -> _Spec:
        node = self.children.get(key)
        if node is None:
            node = self.children[key] = _Spec(whole=self.whole)
        return node


def _literal_below(spec: _Spec) -> bool:
    return spec.literal or any(_literal_below(c) for c in spec.children.values()) or (
        spec.items is not None and _literal_below(spec.items))


class _Reader:
    def __init__(self, template):
        self.root = _Spec()
        self.scopes: list[dict] = [{}]
        self._nodes(template.template.nodelist)

    def _resolve(self, lookups) -> _Spec | None:
        head, *rest = lookups
        if head == "forloop":
            return None
        node = None
        for scope in reversed(self.scopes):
            if head in scope:
                node = scope[head]
                break
        if node is None:
            node = self.root.child(head)
        for key in rest:
            node = node.child(key)
        return node

    def _variable(self, var, mode: str) -> _Spec | None:
        """Note a use of `var`: "print" ({{ var }}), "as_is" (compared, filtered, a tag's
        argument: its value is shape) or "use" (looped over or tested for truth)."""
        if not (isinstance(var, Variable) and var.lookups):
            return None  # a constant in the template
        node = self._resolve(var.lookups)
        if node is not None:
            if mode == "as_is":
                node.literal = True
            elif mode == "print":
                node.printed = True
        return node

    def _expression(self, fe, mode: str) -> _Spec | None:
        if not isinstance(fe, FilterExpression):
            raise Unsupported(f"expression {fe!r}")
        for _func, args in fe.filters:
            for _lookup, arg in args:
                self._variable(arg, "as_is")
        return self._variable(fe.var, "as_is" if fe.filters else mode)

    def _condition(self, node, *, compared: bool) -> None:
        if node is None:
            return
        if isinstance(node, TemplateLiteral):
            # tested for truth: falsy values are shape, so a truthy one needs no printing
            self._expression(node.value, "as_is" if compared else "use")
            return
        op = getattr(node, "id", None)
        if op is None:
            raise Unsupported(f"condition {node!r}")
        inner = compared or op not in _LOGICAL
        self._condition(getattr(node, "first", None), compared=inner)
        self._condition(getattr(node, "second", None), compared=inner)

    def _nodes(self, nodelist) -> None:
        for node in nodelist:
            if isinstance(node, (TextNode, CommentNode, LoadNode)):
                continue
            if isinstance(node, VariableNode):
                self._expression(node.filter_expression, "print")
            elif isinstance(node, IfNode):
                for condition, nodes in node.conditions_nodelists:
                    self._condition(condition, compared=False)
                    self._nodes(nodes)
            elif isinstance(node, ForNode):
                sequence = self._expression(node.sequence, "use")
                scope = {}
                if sequence is not None:
                    if sequence.items is None:
                        sequence.items = _Spec(whole=sequence.whole)
                    if len(node.loopvars) == 1:
                        scope[node.loopvars[0]] = sequence.items
                    else:  # unpacking: every part of every element is used
                        sequence.items.whole = True
                        scope.update({name: _Spec(whole=True) for name in node.loopvars})
                self.scopes.append(scope)
                self._nodes(node.nodelist_loop)
                self.scopes.pop()
                if sequence is not None and len(node.loopvars) > 1 and any(
                        _literal_below(part) for part in scope.values()):
                    sequence.items.literal = True  # a part compared or filtered: all is shape
                self._nodes(node.nodelist_empty)
            elif isinstance(node, AutoEscapeControlNode):
                self._nodes(node.nodelist)
            elif isinstance(node, TranslateNode):
                if node.asvar:
                    raise Unsupported("{% translate ... as var %}")
                self._expression(node.filter_expression, "as_is")
                if node.message_context is not None:
                    self._expression(node.message_context, "as_is")
            elif isinstance(node, BlockTranslateNode):
                if node.asvar:
                    raise Unsupported("{% blocktranslate ... asvar %}")
                for fe in node.extra_context.values():
                    self._expression(fe, "print")
                if node.counter is not None:
                    self._expression(node.counter, "as_is")
                if node.message_context is not None:
                    self._expression(node.message_context, "as_is")
                local = {*node.extra_context, node.countervar}
                for token in [*node.singular, *(node.plural or [])]:
                    if token.token_type == TokenType.VAR and token.contents not in local:
                        # {{ name }} in the text, from the outer context
                        self._variable(Variable(token.contents), "print")
            else:
                raise Unsupported(type(node).__name__)


# --- splitting a context into its shape and its printed values -------------------------------

_PRINTABLE = (str, int, float, Decimal)
_MISSING = object()
_NONEMPTY = "__skeleton_nonempty__"


def _hashable(value):
    """A value as part of the shape: equal values that print differently (Decimal("0") and
    Decimal("0.00"), 0.0 and -0.0) are different shapes."""
    try:
        hash(value)
    except TypeError:
        raise Unsupported(f"unhashable value {type(value).__name__}") from None
    if value.__class__ is str or value is None or value.__class__ is bool:
        return ("=", type(value), value)
    return ("=", type(value), value, repr(value))


def _shape(value, spec: _Spec, values: list):
    """The shape of `value` as `spec` uses it; printed values are appended to `values`."""
    if spec.literal:
        return _hashable(value)
    if isinstance(value, dict):
        if spec.items is not None or spec.printed:
            raise Unsupported("a loop over a dict, or a printed dict")
        if spec.whole:
            return ("d", tuple((k, _shape(v, spec, values)) for k, v in value.items()))
        return ("d", bool(value), tuple(
            _shape(value[key], child, values) if key in value else _MISSING
            for key, child in spec.children.items()))
    if isinstance(value, (list, tuple)):
        if spec.printed or (spec.children and not spec.whole):
            raise Unsupported("a printed list, or a lookup into one")
        items = spec.items or (spec if spec.whole else None)
        if items is None:
            return ("l", len(value))
        return ("l", value.__class__ is tuple, tuple(_shape(v, items, values) for v in value))
    if spec.children and not spec.whole:
        if value is None or value is False or value == "":
            return _hashable(value)  # every lookup into it prints "" -- a fixed shape
        raise Unsupported("a lookup into a value")
    if value and isinstance(value, _PRINTABLE) and not isinstance(value, bool):
        values.append(value)
        return "$"
    return _hashable(value)


def _masked(value, spec: _Spec, counter: list):
    """`value` with a sentinel for each printed value, in the order _shape appended them."""
    if spec.literal:
        return value
    if isinstance(value, dict):
        if spec.whole:
            return {k: _masked(v, spec, counter) for k, v in value.items()}
        out = {key: _masked(value[key], child, counter)
               for key, child in spec.children.items() if key in value}
        if value and not out:
            out[_NONEMPTY] = True  # the template tests it for truth
        return out
    if isinstance(value, (list, tuple)):
        items = spec.items or (spec if spec.whole else None)
        if items is None:
            return [None] * len(value)
        masked = [_masked(v, items, counter) for v in value]
        return tuple(masked) if value.__class__ is tuple else masked
    if value and isinstance(value, _PRINTABLE) and not isinstance(value, bool):
        counter[0] += 1
        return _Sentinel(counter[0] - 1)
    return value


class _Skeleton:
    __slots__ = ("pieces", "safe")

    def __init__(self, pieces, safe=True):
        self.pieces = pieces  # [literal text, (index, escaped), literal text, ...]
        self.safe = safe


class SkeletonTemplate:
    """`render(context)` equals `template.render(context)`, much faster on repeated shapes.

    `template` is a django.template.backends.django.Template (what get_template and
    engines["django"].from_string return)."""

    def __init__(self, template):
        self.template = template
        self.supported = True
        self.spec = _Spec()
        try:
            self.spec = _Reader(template).root
        except Unsupported as exc:
            log.info("skeleton: %s rendered the ordinary way (%s)", template.origin, exc)
            self.supported = False
        self._shapes: OrderedDict = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.builds = self.ordinary = 0

    def render(self, context: dict) -> str:
        if not self.supported:
            return self.template.render(context)
        values: list = []
        try:
            shape = _shape(context, self.spec, values)
        except Unsupported:
            self.ordinary += 1
            return self.template.render(context)
        key = (get_language(), get_current_timezone_name(), shape)
        skeleton = self._shapes.get(key)
        if skeleton is None:
            return self._build(key, context, values)
        if not skeleton.safe:
            self.ordinary += 1
            return self.template.render(context)
        self.hits += 1
        return _join(skeleton.pieces, values)

    def _build(self, key, context: dict, values: list) -> str:
        self.builds += 1
        rendered = self.template.render(_masked(context, self.spec, [0]))
        pieces: list = []
        at = 0
        for match in _SENTINEL.finditer(rendered):
            pieces.append(rendered[at:match.start()])
            pieces.append((int(match.group(1)), match.group(2) == "e"))
            at = match.end()
        pieces.append(rendered[at:])
        ordinary = self.template.render(context)
        safe = (all(p.__class__ is str or p[0] < len(values) for p in pieces)
                and _join(pieces, values) == ordinary)
        if not safe:
            log.warning("skeleton: %s differs from the ordinary render for one shape; that "
                        "shape is rendered the ordinary way", self.template.origin)
        with self._lock:
            self._shapes[key] = _Skeleton(pieces, safe)
            while len(self._shapes) > MAX_SHAPES:
                self._shapes.popitem(last=False)
        return ordinary


def _printed(value, escaped: bool) -> str:
    """What the engine prints for `value` (render_value_in_context): localised, escaped unless
    autoescape is off there or the value is already safe HTML."""
    value = localize(value)
    if escaped:
        return conditional_escape(value)
    return str(value)


def _join(pieces: list, values: list) -> str:
    out = []
    append = out.append
    for piece in pieces:
        if piece.__class__ is str:
            append(piece)
            continue
        value = values[piece[0]]
        if value.__class__ is str:  # the common case, exactly django.utils.html.escape
            append(_html_escape(value) if piece[1] else value)
        elif value.__class__ is SafeString:
            append(value)
        else:
            append(_printed(value, piece[1]))
    return "".join(out)
