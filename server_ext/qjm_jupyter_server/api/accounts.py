"""Request and response models of the Auth, Me and Admin routes (API.md).

Every request string has a `max_length` and unknown fields are refused, so a client
typo is a 422 naming the field rather than a silently ignored option. `UserOut` is the
only way a user leaves the server: it has no field that could carry the IBM key.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator

from qjm_jupyter.statuses import normalize_statuses

from ..addresses import normalize_email
from ..domain import User
from ..identity.binding import has_address
from .times import ms_to_iso

if TYPE_CHECKING:
    from ..accounts import LoginResult

# Deliberately simple: one "@", a dot in the domain, no spaces or angle brackets. The
# real check is the verification email; this only stops obvious garbage and header tricks.
EMAIL_RE = re.compile(r"^[^@\s\x00-\x1f\x7f<>\"',;()\[\]\\]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?\.[A-Za-z0-9-]{2,63}$")

# crn:v1:<cname>:<ctype>:quantum-computing:<region>:a/<account>:<instance guid>::
CRN_RE = re.compile(r"^crn:v1:[a-z0-9-]+:[a-z0-9-]+:quantum-computing:[a-z0-9-]+:a/[A-Za-z0-9]+:[A-Za-z0-9-]+::$")

Email = Annotated[str, Field(min_length=3, max_length=254, description="An email address (case-insensitive)")]
NewPassword = Annotated[str, Field(min_length=8, max_length=1024, description="8 to 1024 characters; no composition rules")]
AnyPassword = Annotated[str, Field(min_length=1, max_length=1024)]
IBMKey = Annotated[str, Field(min_length=8, max_length=1024, description="IBM Cloud API key (write-only)")]
CRN = Annotated[str, Field(max_length=512, description="IBM Quantum instance CRN")]
ActionTokenStr = Annotated[str, Field(min_length=16, max_length=128, description="The token from the emailed link")]


def check_email(value: str) -> str:
    """The canonical address (NFKC, IDNA, lower case: a look-alike is the same address);
    the pattern stays as a second, ASCII-level guard against header tricks."""
    value = normalize_email(value)
    if not EMAIL_RE.match(value):
        raise ValueError("not a valid email address")
    return value


def check_crn(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    if not CRN_RE.match(value):
        raise ValueError(
            "not an IBM Quantum instance CRN (crn:v1:bluemix:public:quantum-computing:<region>:a/<account>:<instance>::)"
        )
    return value


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_max_length=4096)


# -- auth -------------------------------------------------------------------------------------
class RegisterIn(_In):
    email: Email
    password: NewPassword
    ibm_quantum_token: IBMKey | None = None
    default_instance: CRN | None = None

    _email = field_validator("email")(check_email)
    _crn = field_validator("default_instance")(check_crn)

    @field_validator("ibm_quantum_token")
    @classmethod
    def _strip_key(cls, v: str | None) -> str | None:
        return v.strip() or None if v is not None else None


class LoginIn(_In):
    """JSON `{email, password}` or the OAuth2 password form (`username`, `password`)."""

    email: Email = Field(validation_alias=AliasChoices("email", "username"))
    password: AnyPassword
    # the rest of an OAuth2 password-grant form; accepted, not used
    grant_type: Literal["password"] | None = None
    scope: str | None = Field(default=None, max_length=256)
    client_id: str | None = Field(default=None, max_length=256)
    client_secret: str | None = Field(default=None, max_length=256)

    _email = field_validator("email")(check_email)

    @field_validator("grant_type", mode="before")
    @classmethod
    def _empty_grant(cls, v: object) -> object:
        return None if v == "" else v


class EmailIn(_In):
    email: Email

    _email = field_validator("email")(check_email)


class TokenIn(_In):
    token: ActionTokenStr


class ResetIn(_In):
    token: ActionTokenStr
    password: NewPassword


class MessageOut(BaseModel):
    message: str


# -- users ------------------------------------------------------------------------------------
class IBMKeyOut(BaseModel):
    set: bool
    last4: str | None
    state: Literal["none", "ok", "invalid"]
    updated_at: str | None


class UserOut(BaseModel):
    id: str
    email: str
    is_verified: bool
    is_admin: bool
    is_active: bool
    created_at: str
    default_instance: str | None
    notify_default: list[str]
    ibm_key: IBMKeyOut

    @classmethod
    def from_user(cls, user: User) -> UserOut:
        return cls(
            id=user.id,
            email=user.email if has_address(user) else "",  # "": not given yet (a host-identity account)
            is_verified=user.is_verified,
            is_admin=user.is_admin,
            is_active=user.is_active,
            created_at=ms_to_iso(user.created_at) or "",
            default_instance=user.default_instance,
            notify_default=list(user.notify_default),
            ibm_key=IBMKeyOut(
                set=user.ibm_key_cipher is not None,
                last4=user.ibm_key_last4,
                state=user.ibm_key_state,
                updated_at=ms_to_iso(user.ibm_key_updated_at),
            ),
        )


class LoginOut(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int
    user: UserOut

    @classmethod
    def from_result(cls, result: LoginResult) -> LoginOut:
        return cls(access_token=result.access_token, expires_in=result.expires_in, user=UserOut.from_user(result.user))


class MePatchIn(_In):
    """Absent fields stay unchanged; `ibm_quantum_token: null` clears the stored key."""

    email: Email | None = None
    password: NewPassword | None = None
    current_password: AnyPassword | None = None
    ibm_quantum_token: IBMKey | None = None
    default_instance: CRN | None = None
    notify_default: list[Annotated[str, Field(max_length=32)]] | None = Field(default=None, max_length=20)

    _crn = field_validator("default_instance")(check_crn)

    def changes(self) -> dict[str, Any]:
        """Only the fields the client sent (a sent null means "clear")."""
        return {name: getattr(self, name) for name in self.model_fields_set}

    @field_validator("email")
    @classmethod
    def _email(cls, v: str | None) -> str | None:
        return None if v is None else check_email(v)

    @field_validator("ibm_quantum_token")
    @classmethod
    def _strip_key(cls, v: str | None) -> str | None:
        if v is None:
            return None
        v = v.strip()
        if len(v) < 8:
            raise ValueError("an IBM API key has at least 8 characters; send null to remove the key")
        return v

    @field_validator("notify_default")
    @classmethod
    def _statuses(cls, v: list[str] | None) -> list[str] | None:
        return None if v is None else normalize_statuses(v)


class PasswordIn(_In):
    password: AnyPassword


# -- admin ------------------------------------------------------------------------------------
class PageQuery(_In):
    limit: int = Field(default=50, ge=1, le=500)
    offset: int = Field(default=0, ge=0, le=10_000_000)


class UserList(BaseModel):
    users: list[UserOut]
    total: int


class AdminUserPatchIn(_In):
    is_active: bool | None = None
    is_admin: bool | None = None
