"""`qjm/api/me`: the logged-in user's own account (always the token's user, never an id)."""

from __future__ import annotations

from ..api.accounts import MePatchIn, PasswordIn, UserOut
from ..api.spec import Op
from .base import QJMHandler

TAGS = ("me",)


class MeHandler(QJMHandler):
    route = r"/qjm/api/me"
    spec = {
        "get": Op("The current user", response=UserOut, tags=TAGS),
        "patch": Op(
            "Change the email (re-verified), password, IBM key (null clears), default instance or default statuses",
            response=UserOut, body=MePatchIn, tags=TAGS, errors=(403, 422, 429),
        ),
        "delete": Op("Delete the account and its jobs", body=PasswordIn, status=204, tags=TAGS, errors=(403, 422, 429)),
    }

    def get(self) -> None:
        self.send(UserOut.from_user(self.user))

    async def patch(self) -> None:
        data = self.body(MePatchIn)
        # host_authenticated: Jupyter or the Hub signed this user in (no qjm password to ask for)
        user = await self.services.accounts.update_me(
            self.user, data.changes(), host_authenticated=self.auth_via not in (None, "accounts")
        )
        self.send(UserOut.from_user(user))

    async def delete(self) -> None:
        data = self.body(PasswordIn)
        await self.services.accounts.delete_me(self.user, data.password)
        self.send(None)


HANDLERS: list[type[QJMHandler]] = [MeHandler]
