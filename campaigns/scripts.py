"""Scripts (话术) personalised with a small safe set of placeholders.

A script may name the client's own data and nothing else: `{name}`, `{rm_name}`,
`{product_name}`, `{product_risk_level}` (or their Chinese names `{姓名}`, `{客户经理}`,
`{产品}`, `{产品风险等级}`). Rendering is a substitution from a dict built by the caller, so
no attribute, method or setting can be reached from a script, and an unknown placeholder is a
validation error naming it rather than text sent to a client.
"""

from __future__ import annotations

import re

PLACEHOLDERS = ("name", "rm_name", "product_name", "product_risk_level")
ALIASES = {"姓名": "name", "客户经理": "rm_name", "产品": "product_name",
           "产品风险等级": "product_risk_level"}
PRODUCT_PLACEHOLDERS = ("product_name", "product_risk_level")

_PLACEHOLDER = re.compile(r"\{\s*([^{}\s]{1,40})\s*\}")


def _canonical(name: str) -> str | None:
    name = ALIASES.get(name, name)
    return name if name in PLACEHOLDERS else None


def placeholders_in(text: str) -> tuple[list[str], list[str]]:
    """(known placeholders, unknown names) used in `text`, each once, in order."""
    known, unknown = [], []
    for match in _PLACEHOLDER.finditer(text or ""):
        canonical = _canonical(match.group(1))
        bucket, value = (known, canonical) if canonical else (unknown, match.group(1))
        if value not in bucket:
            bucket.append(value)
    return known, unknown


def script_render(text: str, values: dict[str, str]) -> str:
    """`text` with every known placeholder replaced from `values` (missing -> empty)."""
    def replace(match: re.Match) -> str:
        canonical = _canonical(match.group(1))
        return str(values.get(canonical, "")) if canonical else match.group(0)

    return _PLACEHOLDER.sub(replace, text or "")


def script_values(*, client, product=None) -> dict[str, str]:
    """What a script may say about this client: their name, their RM's name, the product
    offered to them (already passed through the suitability check) and its risk level."""
    rm = client.rm if client.rm_id else None
    return {"name": client.name, "rm_name": str(rm) if rm else "",
            "product_name": product.name if product else "",
            "product_risk_level": product.risk_level if product else ""}
