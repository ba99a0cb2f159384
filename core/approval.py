"""Approval covers everything: a stable fingerprint of what was approved, and what changed since.

An app that needs approval (newsletters now, campaigns next) builds an *approval snapshot*: a
JSON-able dict of everything the client will see and everything that decides who gets it. At
approval it stores `snapshot_hash(snapshot)` and the snapshot itself (`as_stored`); before
anything goes out it rebuilds the snapshot from the database and calls `approval_check`. A
different hash means the approval no longer holds; `changed` names what differs (top-level
keys, or "key.subkey" one level down, e.g. "products.P001"), for the audit log and the page.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder

# What `changed` says when there is nothing to compare with (approved before snapshots existed).
NO_SNAPSHOT = "snapshot"


def canonical_json(snapshot: Any) -> str:
    """One text per value: keys sorted, no whitespace, non-ASCII kept, dates and decimals as
    Django's JSON encoder writes them."""
    return json.dumps(snapshot, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      cls=DjangoJSONEncoder)


def snapshot_hash(snapshot: Any) -> str:
    """sha256 (hex) of the canonical JSON of `snapshot`."""
    return hashlib.sha256(canonical_json(snapshot).encode("utf-8")).hexdigest()


def as_stored(snapshot: Any) -> Any:
    """The snapshot as a JSON field stores and returns it (so a stored one compares equal)."""
    return json.loads(canonical_json(snapshot))


def changed_paths(approved: Any, current: Any) -> list[str]:
    """Sorted keys whose values differ; where both sides are dicts, the differing subkeys
    ("products.P001"). [] when the two are equal."""
    approved, current = as_stored(approved), as_stored(current)
    if approved == current:
        return []
    if not isinstance(approved, dict) or not isinstance(current, dict):
        return [NO_SNAPSHOT]
    out = []
    for key in sorted(set(approved) | set(current)):
        old, new = approved.get(key), current.get(key)
        if old == new:
            continue
        if isinstance(old, dict) and isinstance(new, dict):
            out += [f"{key}.{sub}" for sub in sorted(set(old) | set(new))
                    if old.get(sub) != new.get(sub)]
        else:
            out.append(key)
    return out


@dataclass(frozen=True)
class ApprovalCheck:
    holds: bool
    current_hash: str
    changed: list[str] = field(default_factory=list)


def approval_check(*, approved_hash: str, approved_snapshot: Any,
                   current_snapshot: Any) -> ApprovalCheck:
    """Does the approval stored as (approved_hash, approved_snapshot) still cover
    `current_snapshot`? No stored hash never holds."""
    current_hash = snapshot_hash(current_snapshot)
    if approved_hash and current_hash == approved_hash:
        return ApprovalCheck(holds=True, current_hash=current_hash)
    changed = changed_paths(approved_snapshot, current_snapshot) if approved_snapshot else []
    return ApprovalCheck(holds=False, current_hash=current_hash,
                         changed=changed or [NO_SNAPSHOT])
