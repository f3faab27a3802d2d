"""`qjm/api/admin/users`: administrators list accounts and (de)activate or (de)promote them.

`GET admin/jobs` belongs with the jobs routes (it needs JobService).
"""

from __future__ import annotations

from ..api.accounts import AdminUserPatchIn, PageQuery, UserList, UserOut
from ..api.spec import Op
from .base import QJMHandler

TAGS = ("admin",)


class AdminUsersHandler(QJMHandler):
    route = r"/qjm/api/admin/users"
    spec = {"get": Op("Every account, oldest first", response=UserList, query=PageQuery, tags=TAGS, errors=(403,))}

    async def get(self) -> None:
        q = self.query(PageQuery)
        users, total = await self.services.accounts.list_users(self.user, q.limit, q.offset)
        self.send(UserList(users=[UserOut.from_user(u) for u in users], total=total))


class AdminUserHandler(QJMHandler):
    route = r"/qjm/api/admin/users/(?P<user_id>[A-Za-z0-9_-]{1,64})"
    spec = {
        "patch": Op(
            "Activate/deactivate (revokes its tokens) or promote/demote an account",
            response=UserOut, body=AdminUserPatchIn, tags=TAGS, errors=(403, 404, 422),
        )
    }

    async def patch(self, user_id: str) -> None:
        data = self.body(AdminUserPatchIn)
        user = await self.services.accounts.admin_update(self.user, user_id, data.is_active, data.is_admin)
        self.send(UserOut.from_user(user))


HANDLERS: list[type[QJMHandler]] = [AdminUsersHandler, AdminUserHandler]
