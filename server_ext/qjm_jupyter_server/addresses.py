"""Email addresses in one canonical form, so a look-alike is the same address.

`email-validator` (a maintained library) checks the syntax and normalizes the domain
(IDNA) and the local part; Unicode NFKC first folds compatibility forms, so the
full-width `ａdmin@example.org` is `admin@example.org`. Addresses are then lower-cased:
the store compares them exactly, and no mail system we send to treats case as meaningful.
"""

from __future__ import annotations

import unicodedata

from email_validator import EmailNotValidError, validate_email


def normalize_email(value: str) -> str:
    """The canonical form of an address; ValueError (naming the problem) when it is not one."""
    text = unicodedata.normalize("NFKC", value).strip()
    if any(ch in text for ch in "\r\n\x00<>\"',;()[]\\"):
        raise ValueError("not a valid email address")
    try:
        # no DNS lookups (an outbound request, and the mail itself is the real check);
        # `.test` allowed for test relays, the other special-use names (.local, .onion) are not mail domains
        valid = validate_email(text, check_deliverability=False, allow_smtputf8=True, test_environment=True)
    except EmailNotValidError as exc:
        raise ValueError(f"not a valid email address: {exc}") from None
    local, _, domain = valid.normalized.rpartition("@")
    # ASCII domains in their A-label form, so IDN look-alikes compare by what DNS sees
    ascii_domain = valid.ascii_domain or domain
    return unicodedata.normalize("NFKC", f"{local}@{ascii_domain}").lower()
