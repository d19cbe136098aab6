"""``zt desk``: run the desk service (register ``desk`` as a typer command)."""

from __future__ import annotations

import typer

from services.desk.users import DEMO_BANKS, DEMO_DISTRICTS
from services.desk.users import demo_logins as _demo_logins


def desk(
    host: str = typer.Option("127.0.0.1", help="Address to listen on (loopback by default)."),
    port: int = typer.Option(8070, help="Port of the web pages and the API."),
    bootstrap: str | None = typer.Option(None, help="Kafka bootstrap servers."),
    db: str | None = typer.Option(None, help="SQLite file path, or a SQLAlchemy URL "
                                             "(postgresql+psycopg://...). Env ZT_DESK_DB."),
    users: str | None = typer.Option(None, help="TOML file of users. Env ZT_DESK_USERS."),
    config: str | None = typer.Option(None, help="Config file (zt.toml)."),
    demo: bool = typer.Option(False, help="Use the demo logins (never in production)."),
    demo_districts: str | None = typer.Option(
        None, help="With --demo: districts to make logins for, comma-separated "
                   f"(default {','.join(DEMO_DISTRICTS)}). Env ZT_DESK_DEMO_DISTRICTS."),
    demo_banks: str | None = typer.Option(
        None, help="With --demo: banks to make logins for, comma-separated "
                   f"(default {','.join(DEMO_BANKS)}). Env ZT_DESK_DEMO_BANKS."),
    clock: str | None = typer.Option(
        None, help="'wall' (live operation, the default) or 'stream': due times and outcomes "
                   "on the clock of the tasks' stream, for a replayed or simulated past. "
                   "Env ZT_DESK_CLOCK."),
    secure_cookies: bool | None = typer.Option(
        None, "--secure-cookies/--no-secure-cookies",
        help="Session cookie only over HTTPS (default: on unless the host is loopback). "
             "Env ZT_DESK_SECURE_COOKIES."),
) -> None:
    """Serve police desks and bank liaisons: warning tasks in, outcomes out."""
    import uvicorn

    from services.desk.app import create_app
    from services.desk.settings import load

    try:
        settings = load(bootstrap=bootstrap, db=db, users=users, config=config, demo=demo,
                        host=host, secure_cookies=secure_cookies, clock=clock,
                        demo_districts=demo_districts, demo_banks=demo_banks)
    except (ValueError, FileNotFoundError) as e:
        raise typer.BadParameter(str(e)) from None
    app = create_app(settings)
    typer.echo(f"desk service on http://{host}:{port}/ (broker {settings.bootstrap}, "
               f"storage {settings.database_url.split('://')[0]}, clock {settings.clock})")
    if demo and not users:
        typer.echo(demo_logins(
            tuple(sorted({u.scope for u in settings.users.values() if u.works_desk})),
            tuple(sorted({u.scope for u in settings.users.values() if u.kind == "bank"}))))

    class DeskServer(uvicorn.Server):
        def handle_exit(self, sig: int, frame: object) -> None:
            app.state.stopping.set()  # live pages' streams end now, not after their minute
            super().handle_exit(sig, frame)  # type: ignore[arg-type]

    DeskServer(uvicorn.Config(app, host=host, port=port, log_level="warning",
                              timeout_graceful_shutdown=5)).run()


def demo_logins(districts: tuple[str, ...] = DEMO_DISTRICTS,
                banks: tuple[str, ...] = DEMO_BANKS) -> str:
    """The demo logins, one a line, for `zt demo` to print."""
    return "\n".join(f"  {role:<20} user {name:<20} password {pw}"
                     for name, role, pw in _demo_logins(districts, banks))


if __name__ == "__main__":
    typer.run(desk)
