"""`qjm/api/auth/*`: register, login, logout-all, email verification, password reset."""

from __future__ import annotations

from ..api.accounts import EmailIn, LoginIn, LoginOut, MessageOut, RegisterIn, ResetIn, TokenIn, UserOut
from ..api.spec import Op
from .base import QJMHandler

TAGS = ("auth",)


class RegisterHandler(QJMHandler):
    route = r"/qjm/api/auth/register"
    spec = {
        "post": Op(
            "Create an account (same answer whether or not the email is taken)",
            response=MessageOut, body=RegisterIn, status=202, auth=False, tags=TAGS, errors=(422, 429, 503),
        )
    }

    async def post(self) -> None:
        data = self.body(RegisterIn)
        message = await self.services.accounts.register(
            data.email, data.password, self.request.remote_ip or "",
            ibm_quantum_token=data.ibm_quantum_token, default_instance=data.default_instance,
        )
        self.send(MessageOut(message=message))


class LoginHandler(QJMHandler):
    route = r"/qjm/api/auth/login"
    spec = {
        "post": Op(
            "Log in: JSON {email, password} or the OAuth2 password form (username, password)",
            response=LoginOut, body=LoginIn, auth=False, form=True, tags=TAGS, errors=(401, 403, 422, 429, 503),
            headers=(("Cache-Control", "no-store"),),
        )
    }

    async def post(self) -> None:
        data = self.body(LoginIn)
        result = await self.services.accounts.login(data.email, data.password, self.request.remote_ip or "")
        self.send(LoginOut.from_result(result))


class LogoutAllHandler(QJMHandler):
    route = r"/qjm/api/auth/logout-all"
    spec = {"post": Op("Revoke every token issued so far (log out everywhere)", status=204, tags=TAGS)}

    async def post(self) -> None:
        await self.services.accounts.logout_all(self.user)
        self.send(None)


class VerifyRequestHandler(QJMHandler):
    route = r"/qjm/api/auth/verify/request"
    spec = {
        "post": Op(
            "Send a new verification email (same answer for any address)",
            response=MessageOut, body=EmailIn, status=202, auth=False, tags=TAGS, errors=(422, 429),
        )
    }

    async def post(self) -> None:
        data = self.body(EmailIn)
        message = await self.services.accounts.request_verification(data.email, self.request.remote_ip or "")
        self.send(MessageOut(message=message))


class VerifyConfirmHandler(QJMHandler):
    route = r"/qjm/api/auth/verify/confirm"
    spec = {
        "post": Op("Confirm an email address with the emailed token", response=UserOut, body=TokenIn, auth=False, tags=TAGS, errors=(400, 409, 422))
    }

    async def post(self) -> None:
        data = self.body(TokenIn)
        user = await self.services.accounts.confirm_verification(data.token)
        self.send(UserOut.from_user(user))


class ForgotPasswordHandler(QJMHandler):
    route = r"/qjm/api/auth/password/forgot"
    spec = {
        "post": Op(
            "Email a password-reset link (same answer for any address)",
            response=MessageOut, body=EmailIn, status=202, auth=False, tags=TAGS, errors=(422, 429),
        )
    }

    async def post(self) -> None:
        data = self.body(EmailIn)
        message = await self.services.accounts.forgot_password(data.email, self.request.remote_ip or "")
        self.send(MessageOut(message=message))


class ResetPasswordHandler(QJMHandler):
    route = r"/qjm/api/auth/password/reset"
    spec = {
        "post": Op(
            "Set a new password with the emailed token (logs out every session)",
            response=MessageOut, body=ResetIn, auth=False, tags=TAGS, errors=(400, 422),
            headers=(("Referrer-Policy", "no-referrer"),),
        )
    }

    async def post(self) -> None:
        data = self.body(ResetIn)
        message = await self.services.accounts.reset_password(data.token, data.password)
        self.send(MessageOut(message=message))


HANDLERS: list[type[QJMHandler]] = [
    RegisterHandler,
    LoginHandler,
    LogoutAllHandler,
    VerifyRequestHandler,
    VerifyConfirmHandler,
    ForgotPasswordHandler,
    ResetPasswordHandler,
]
