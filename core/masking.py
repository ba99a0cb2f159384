"""Masking of personal information (PIPL): shown in full only to the client's own RM."""


def mask_phone(value: str) -> str:
    if not value:
        return ""
    digits = value.strip()
    if len(digits) <= 4:
        return "*" * len(digits)
    if len(digits) >= 11:
        return f"{digits[:3]}****{digits[-4:]}"
    return f"{'*' * (len(digits) - 4)}{digits[-4:]}"


def mask_email(value: str) -> str:
    if not value or "@" not in value:
        return "***" if value else ""
    local, domain = value.split("@", 1)
    return f"{local[:1]}***@{domain}"


def mask_id(value: str) -> str:
    """ID card and account numbers: keep the first 3 and last 4 characters."""
    if not value:
        return ""
    if len(value) <= 7:
        return "*" * len(value)
    return f"{value[:3]}{'*' * (len(value) - 7)}{value[-4:]}"


def mask_name(value: str) -> str:
    """Names are not masked by default (RMs, ops and compliance work by name)."""
    return value
