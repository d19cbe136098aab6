"""Authentication: a signed session cookie for the web pages, HTTP Basic for the API.

Both resolve to a ``User`` through one injected dependency, ``current_user``; role checks are
dependencies on top of it. The cookie holds only the user name and the time it was issued,
signed with HMAC-SHA256 under the service's secret (the stdlib equivalent of Starlette's
SessionMiddleware, which would need the extra ``itsdangerous`` package). It is HttpOnly and
SameSite=Lax, and every form carries a token derived from the cookie (CSRF).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPBasic, HTTPBasicCredentials

from services.desk.users import User

COOKIE = "zt_desk_session"
basic = HTTPBasic(auto_error=False, description="User name and password of a desk user")


class LoginRequired(Exception):
    """Raised for a web page without a valid session: the app redirects to the login form."""


def _sign(secret: str, payload: str) -> str:
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


def make_cookie(secret: str, user: User, at: float | None = None) -> str:
    payload = f"{user.name}|{int(at if at is not None else time.time())}"
    body = base64.urlsafe_b64encode(payload.encode()).decode()
    return f"{body}.{_sign(secret, body)}"


def read_cookie(secret: str, value: str, max_age_s: int) -> str | None:
    """The user name in a valid, unexpired cookie, or None."""
    body, _, sig = value.partition(".")
    if not sig or not hmac.compare_digest(sig, _sign(secret, body)):
        return None
    try:
        name, _, issued = base64.urlsafe_b64decode(body.encode()).decode().partition("|")
        age = time.time() - int(issued)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    return name if 0 <= age <= max_age_s else None


def csrf_token(secret: str, cookie: str) -> str:
    return _sign(secret, "csrf:" + cookie)[:32]


def authenticate(request: Request, creds: HTTPBasicCredentials | None) -> User | None:
    st = request.app.state
    users: dict[str, User] = st.settings.users
    if creds is not None:
        user = users.get(creds.username)
        if user is not None and user.check(creds.password):
            return user
        return None
    cookie = request.cookies.get(COOKIE)
    if cookie:
        name = read_cookie(st.settings.secret, cookie, st.settings.session_max_age_s)
        if name is not None:
            return users.get(name)
    return None


def current_user(request: Request,
                 creds: Annotated[HTTPBasicCredentials | None, Depends(basic)]) -> User:
    """The authenticated user of an API request, or 401."""
    user = authenticate(request, creds)
    if user is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "log in: HTTP Basic or a session",
                            headers={"WWW-Authenticate": 'Basic realm="zt-desk"'})
    return user


def page_user(request: Request) -> User:
    """The user of a web page (session cookie), or a redirect to the login form."""
    user = authenticate(request, None)
    if user is None:
        raise LoginRequired()
    return user


def _role(kind: str, who: User) -> User:
    if who.kind != kind:
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"this needs a {kind} login")
    return who


def desk_user(who: Annotated[User, Depends(current_user)]) -> User:
    return _role("desk", who)


def bank_user(who: Annotated[User, Depends(current_user)]) -> User:
    return _role("bank", who)


def ops_user(who: Annotated[User, Depends(current_user)]) -> User:
    return _role("ops", who)


def desk_page_user(who: Annotated[User, Depends(page_user)]) -> User:
    return _role("desk", who)


def bank_page_user(who: Annotated[User, Depends(page_user)]) -> User:
    return _role("bank", who)


def ops_page_user(who: Annotated[User, Depends(page_user)]) -> User:
    return _role("ops", who)


def check_csrf(request: Request, token: str) -> None:
    cookie = request.cookies.get(COOKIE, "")
    want = csrf_token(request.app.state.settings.secret, cookie)
    if not cookie or not hmac.compare_digest(token, want):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "form expired: reload the page")


# The injected forms of the dependencies above, for route signatures.
CurrentUser = Annotated[User, Depends(current_user)]
PageUser = Annotated[User, Depends(page_user)]
DeskUser = Annotated[User, Depends(desk_user)]
BankUser = Annotated[User, Depends(bank_user)]
OpsUser = Annotated[User, Depends(ops_user)]
DeskPageUser = Annotated[User, Depends(desk_page_user)]
BankPageUser = Annotated[User, Depends(bank_page_user)]
OpsPageUser = Annotated[User, Depends(ops_page_user)]
