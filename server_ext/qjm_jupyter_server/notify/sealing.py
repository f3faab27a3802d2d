"""Sealed outbox bodies: a mail carrying a single-use link is encrypted at rest.

An outbox row lives until it is sent, and for ever when it fails or mail is off; a body
with a verification or reset link in clear would let anyone reading the database (a
backup, an admin tool) take the account. The account service seals such rows with the
key ring (bound to the row's user, like IBM keys), the sender opens them just before
sending, and `mark_sent` clears the body.
"""

from __future__ import annotations

from dataclasses import replace

from ..domain import Notification
from ..secrets import KeyRing

SEALED = "qjm-sealed:v1:"


def is_sealed(note: Notification) -> bool:
    return note.text.startswith(SEALED)


def seal(keyring: KeyRing, note: Notification) -> Notification:
    owner = note.user_id or ""
    return replace(
        note,
        text=SEALED + keyring.encrypt(owner, note.text),
        html=SEALED + keyring.encrypt(owner, note.html),
    )


def unseal(keyring: KeyRing, note: Notification) -> Notification:
    """The row with its bodies in clear (unchanged when it was not sealed); raises
    secrets.UndecryptableKey when the key ring cannot open it."""
    if not is_sealed(note):
        return note
    owner = note.user_id or ""
    return replace(
        note,
        text=keyring.decrypt(owner, note.text[len(SEALED):]),
        html=keyring.decrypt(owner, note.html[len(SEALED):]) if note.html.startswith(SEALED) else note.html,
    )
