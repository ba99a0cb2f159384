"""The text of gateway messages, supplied by the layers above outreach.

Outreach sends what campaigns and newsletters wrote, but may not import them
(tests/test_layers.py). Each source registers, from its AppConfig.ready, a function that
renders a batch of its contacts:

    register_renderer("campaign", render_campaign_contacts)

`fn(contacts: list[Contact]) -> dict[int, tuple[str, str]]` maps contact id -> (title, body)
as they go to that client. The sender (outreach.channels.sender) calls `render` once per
claimed batch; contacts of a source without a renderer, or left out of its answer, get no text
and fail ("no renderer" / "nothing rendered").
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # no models at import: an AppConfig module may import this one at its top
    from ..models import Contact

Renderer = Callable[[list["Contact"]], dict[int, tuple[str, str]]]

_renderers: dict[str, Renderer] = {}


def register_renderer(source: str, fn: Renderer) -> None:
    """Register (or replace: a reloaded app registers again) the renderer of `source`."""
    _renderers[source] = fn


def unregister_renderer(source: str) -> None:
    _renderers.pop(source, None)


def renderer_for(source: str) -> Renderer | None:
    return _renderers.get(source)


@contextlib.contextmanager
def renderer_registered(source: str, fn: Renderer) -> Iterator[Renderer]:
    """Register `fn` for the block and put back what was there before (tests)."""
    previous = _renderers.get(source)
    register_renderer(source, fn)
    try:
        yield fn
    finally:
        if previous is None:
            unregister_renderer(source)
        else:
            register_renderer(source, previous)


def render(contacts: Sequence[Contact]) -> dict[int, tuple[str, str]]:
    """(title, body) per contact id, each source's contacts rendered by its renderer in one
    call. Contacts of a source with no renderer are absent from the answer."""
    by_source: dict[str, list[Contact]] = {}
    for contact in contacts:
        by_source.setdefault(contact.source, []).append(contact)
    texts: dict[int, tuple[str, str]] = {}
    for source, group in by_source.items():
        fn = _renderers.get(source)
        if fn is None:
            continue
        wanted = {contact.pk for contact in group}
        texts.update((pk, text) for pk, text in fn(group).items() if pk in wanted)
    return texts
