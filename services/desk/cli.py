"""``zt desk``: run the desk service (register ``desk`` as a typer command)."""

from __future__ import annotations

import typer

from services.desk.users import DEMO


def desk(
    host: str = typer.Option("127.0.0.1", help="Address to listen on (loopback by default)."),
    port: int = typer.Option(8070, help="Port of the web pages and the API."),
    bootstrap: str | None = typer.Option(None, help="Kafka bootstrap servers."),
    db: str | None = typer.Option(None, help="SQLite file path, or a SQLAlchemy URL "
                                             "(postgresql+psycopg://...). Env ZT_DESK_DB."),
    users: str | None = typer.Option(None, help="TOML file of users. Env ZT_DESK_USERS."),
    config: str | None = typer.Option(None, help="Config file (zt.toml)."),
    demo: bool = typer.Option(False, help="Use the demo logins (never in production)."),
) -> None:
    """Serve police desks and bank liaisons: warning tasks in, outcomes out."""
    import uvicorn

    from services.desk.app import create_app
    from services.desk.settings import load

    try:
        settings = load(bootstrap=bootstrap, db=db, users=users, config=config, demo=demo)
    except (ValueError, FileNotFoundError) as e:
        raise typer.BadParameter(str(e)) from None
    app = create_app(settings)
    typer.echo(f"desk service on http://{host}:{port}/ (broker {settings.bootstrap}, "
               f"storage {settings.database_url.split('://')[0]})")
    if demo and not users:
        typer.echo(demo_logins())
    uvicorn.run(app, host=host, port=port, log_level="warning")


def demo_logins() -> str:
    """The demo logins, one a line, for `zt demo` to print."""
    return "\n".join(f"  {role:<14} user {name:<12} password {pw}" for name, role, pw in DEMO)


if __name__ == "__main__":
    typer.run(desk)
