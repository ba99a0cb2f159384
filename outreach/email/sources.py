"""What the email dispatcher asks of each source of email (newsletters, campaigns).

Outreach sends what newsletters and campaigns wrote but may not import them
(tests/test_layers.py). Each registers, from its AppConfig.ready:

    register_source("newsletter", EmailSource(state=..., renderer=..., done=...))

- `state(source_id)` -> SENDING, PAUSED, CANCELLED, None (gone) or anything else (not
  sending): read between chunks, so pause and cancel take effect within a second.
- `renderer(source_id)` -> an object with `prepare(deliveries)` (a chunk's personal data, in
  a few queries) and `message(delivery)` -> (message, context); `message` is an
  EmailMultiAlternatives, or the exact bytes Django's SMTP backend would send when the
  dispatcher sets `renderer.raw = True`.
- `done(source_id)` -> called when the source has nothing open left in the outbox (newsletters
  mark the edition sent); returns whether it finished the source.

`on_bounce` hooks are told of each hard bounce, whatever the source (newsletters suppress the
address for every later email).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

SENDING, PAUSED, CANCELLED = "sending", "paused", "cancelled"


@dataclass(frozen=True)
class EmailSource:
    state: Callable[[int], str | None]
    renderer: Callable[[int], Any]
    done: Callable[[int], bool] = lambda source_id: False


_sources: dict[str, EmailSource] = {}
_bounce_hooks: list[Callable[[Any], None]] = []


def register_source(name: str, source: EmailSource) -> None:
    """Register (or replace: a reloaded app registers again) the email source `name`."""
    _sources[name] = source


def source_for(name: str) -> EmailSource | None:
    return _sources.get(name)


def on_bounce(hook: Callable[[Any], None]) -> None:
    if hook not in _bounce_hooks:
        _bounce_hooks.append(hook)


def bounced(delivery) -> None:
    for hook in list(_bounce_hooks):
        hook(delivery)
