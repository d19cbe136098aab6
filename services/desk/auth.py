"""Authentication: a signed session cookie for the web pages, HTTP Basic for the API.

Both resolve to a ``User`` through one injected dependency, ``current_user``; role checks are
dependencies on top of it. The cookie holds only the user name and the time it was issued,
signed with HMAC-SHA256 under the service's secret. It is HttpOnly and SameSite=Strict (Secure
outside loopback, ``settings.secure_cookies``); every form carries a token derived from the
cookie, and an API call that changes something with the cookie must send the same token in
``X-CSRF-Token`` (HTTP Basic is not sent by a cross-site form the browser builds). Passwords are
checked by ``logins.LoginGuard`` (throttling, lockout, equal cost, off the request threads);
every failure, by form or by HTTP Basic, is counted and audited.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from typing import Annotated

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPBasic, HTTPBasicCredentials

from services.desk.logins import Verdict
from services.desk.problems import Forbidden, TooMany, Unauthorized
from services.desk.users import User

COOKIE = "zt_desk_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
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


def client_of(request: Request) -> str:
    return request.client.host if request.client else "?"


async def check_password(request: Request, name: str, password: str, how: str) -> User:
    """A password check through the guard: counted, every failure audited; raises on failure."""
    st = request.app.state
    verdict, user = await st.guard.check(name, password, client_of(request))
    st.metrics.logins.labels(verdict.value).inc()
    if verdict is Verdict.OK and user is not None:
        return user
    what = {Verdict.FAILED: "login_failed", Verdict.LOCKED: "login_locked",
            Verdict.THROTTLED: "login_throttled"}[verdict]
    await run_in_threadpool(st.store.audit, None, what, None, f"{how} from {client_of(request)}",
                            name)
    if verdict is Verdict.LOCKED:
        raise TooMany("too many failed logins for this name: try again in %(min)s min",
                      retry_after_s=int(st.guard.locked_for(name)) + 1,
                      min=int(st.guard.locked_for(name)) // 60 + 1)
    if verdict is Verdict.THROTTLED:
        raise TooMany("too many login attempts from your address: wait a minute")
    raise Unauthorized("wrong user name or password")


def session_user(request: Request) -> User | None:
    st = request.app.state
    cookie = request.cookies.get(COOKIE)
    if cookie:
        name = read_cookie(st.settings.secret, cookie, st.settings.session_max_age_s)
        if name is not None:
            return st.settings.users.get(name)
    return None


def check_csrf(request: Request, token: str | None) -> None:
    cookie = request.cookies.get(COOKIE, "")
    want = csrf_token(request.app.state.settings.secret, cookie)
    if not cookie or not token or not hmac.compare_digest(token, want):
        raise Forbidden("form expired: reload the page")


async def current_user(request: Request,
                       creds: Annotated[HTTPBasicCredentials | None, Depends(basic)]) -> User:
    """The authenticated user of an API request, or 401."""
    if creds is not None:
        return await check_password(request, creds.username, creds.password, "basic")
    user = session_user(request)
    if user is None:
        raise Unauthorized("log in: HTTP Basic or a session")
    if request.method not in SAFE_METHODS:
        check_csrf(request, request.headers.get(CSRF_HEADER))
    return user


def page_user(request: Request) -> User:
    """The user of a web page (session cookie), or a redirect to the login form."""
    user = session_user(request)
    if user is None:
        raise LoginRequired()
    return user


def _role(who: User, *kinds: str) -> User:
    if who.kind not in kinds:
        raise Forbidden("this needs a %(kind)s login", kind=" / ".join(kinds))
    return who


def desk_user(who: Annotated[User, Depends(current_user)]) -> User:
    return _role(who, "desk", "supervisor")


def bank_user(who: Annotated[User, Depends(current_user)]) -> User:
    return _role(who, "bank")


def ops_user(who: Annotated[User, Depends(current_user)]) -> User:
    return _role(who, "ops")


def desk_page_user(who: Annotated[User, Depends(page_user)]) -> User:
    return _role(who, "desk", "supervisor")


def bank_page_user(who: Annotated[User, Depends(page_user)]) -> User:
    return _role(who, "bank")


def ops_page_user(who: Annotated[User, Depends(page_user)]) -> User:
    return _role(who, "ops")


# The injected forms of the dependencies above, for route signatures.
CurrentUser = Annotated[User, Depends(current_user)]
PageUser = Annotated[User, Depends(page_user)]
DeskUser = Annotated[User, Depends(desk_user)]
BankUser = Annotated[User, Depends(bank_user)]
OpsUser = Annotated[User, Depends(ops_user)]
DeskPageUser = Annotated[User, Depends(desk_page_user)]
BankPageUser = Annotated[User, Depends(bank_page_user)]
OpsPageUser = Annotated[User, Depends(ops_page_user)]
