"""Desk settings, users file and the `zt desk` command's argument handling."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from services.desk.cli import demo_logins, desk
from services.desk.settings import database_url, load
from services.desk.users import hash_password, verify


@pytest.fixture(autouse=True)
def clean_env(tmp_path, monkeypatch) -> None:
    for var in ("ZT_DESK_USERS", "ZT_DESK_DB", "ZT_DESK_SECRET", "ZT_CONFIG", "ZT_KAFKA"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)  # no zt.toml here


def test_users_come_from_a_file_with_hashed_passwords(tmp_path) -> None:
    f = tmp_path / "users.toml"
    f.write_text(f'[[user]]\nname = "desk-1"\nrole = "desk:371602"\n'
                 f'password_hash = "{hash_password("s3cret", iterations=1000)}"\n')
    s = load(users=str(f), db=str(tmp_path / "d.sqlite3"), secret="k")
    user = s.users["desk-1"]
    assert verify("s3cret", user.password_hash) and not verify("S3cret", user.password_hash)
    assert user.scope == "371602"
    assert s.database_url == f"sqlite:///{tmp_path / 'd.sqlite3'}"
    assert "s3cret" not in repr(s)


@pytest.mark.parametrize("body, why", [
    ('[[user]]\nname = "a:b"\nrole = "ops"\npassword = "x"\n', "letters, digits"),
    ('[[user]]\nname = "a"\nrole = "admin"\npassword = "x"\n', "is not desk:<district>"),
    ('[[user]]\nname = "a"\nrole = "ops"\n', "no password_hash"),
    ("", "no [[user]] entries"),
])
def test_a_bad_users_file_says_why(tmp_path, body: str, why: str) -> None:
    f = tmp_path / "users.toml"
    f.write_text(body)
    with pytest.raises(ValueError) as e:
        load(users=str(f), db=str(tmp_path / "d.sqlite3"))
    assert why in str(e.value)


def test_no_users_no_service(tmp_path) -> None:
    app = typer.Typer()
    app.command()(desk)
    result = CliRunner().invoke(app, ["--db", str(tmp_path / "d.sqlite3")])
    assert result.exit_code == 2 and "no desk users configured" in result.output
    assert "desk-371602" in demo_logins() and "bank:ICBC" in demo_logins()


def test_database_setting_is_a_path_or_a_url(tmp_path) -> None:
    url = "postgresql+psycopg://zt:pw@127.0.0.1:5432/zt_desk"
    assert database_url(url) == url
    assert database_url(str(tmp_path / "a" / "d.sqlite3")).startswith("sqlite:////")
    assert (tmp_path / "a").is_dir()
