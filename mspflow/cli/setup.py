"""``mspflow init``, ``user``, ``member`` and ``db``: the database, its users, who
belongs to which partnership, and its schema."""

from __future__ import annotations

import click

from mspflow.cli.base import App, Group, emit, json_option, pass_app

__all__ = ["register"]


@click.command()
@click.option("--admin", required=True, metavar="NAME", help="First secretariat user.")
@click.option("--email", help="The first user's email address.")
@pass_app
def init(app: App, admin: str, email: str | None) -> None:
    """Create the database and its first secretariat user."""
    from mspflow.services.database import init as initialise

    done = initialise(app.db, admin=admin, email=email, clock=app.clock())
    click.echo(
        f"database ready at {done.database}; "
        + (
            f"user {admin} (secretariat) created"
            if done.created
            else f"user {admin} already exists"
        )
    )


@click.group(cls=Group)
def user() -> None:
    """Users and their roles (secretariat, partner, auditor)."""


@user.command("add")
@click.argument("name")
@click.option("--role", required=True, type=click.Choice(["secretariat", "partner", "auditor"]))
@click.option("--email")
@pass_app
def user_add(app: App, name: str, role: str, email: str | None) -> None:
    """Add a user (secretariat only)."""
    added = app.mspflow.users.add(name=name, role=role, email=email)
    click.echo(f"user {added.name} ({added.role}) added")


@user.command("list")
@json_option
@pass_app
def user_list(app: App, as_json: bool) -> None:
    """Users of this database."""
    users = app.mspflow.users.list()
    emit(users, as_json, lambda: "\n".join(f"{u.name} ({u.role}) {u.email or ''}" for u in users))


@click.group(cls=Group)
def member() -> None:
    """Who belongs to a partnership: partner contacts and assigned secretariat members."""


@member.command("add")
@click.argument("partnership", metavar="P")
@click.argument("user", metavar="USER")
@click.option("--partner", metavar="PARTNER", help="The organisation a partner user speaks for.")
@json_option
@pass_app
def member_add(app: App, partnership: str, user: str, partner: str | None, as_json: bool) -> None:
    """Make USER a member of P (a partner user names their organisation)."""
    done = app.mspflow.members.add(partnership=partnership, user=user, partner=partner)
    org = f" for {done.partner}" if done.partner else ""
    emit(done, as_json, f"{done.partnership}: {done.user} ({done.role}) is a member{org}")


@member.command("remove")
@click.argument("partnership", metavar="P")
@click.argument("user", metavar="USER")
@pass_app
def member_remove(app: App, partnership: str, user: str) -> None:
    """End USER's membership of P (the history keeps it)."""
    done = app.mspflow.members.remove(partnership=partnership, user=user)
    click.echo(f"{done.partnership}: {done.user} is no longer a member")


@member.command("list")
@click.argument("partnership", metavar="P")
@json_option
@pass_app
def member_list(app: App, partnership: str, as_json: bool) -> None:
    """P's members."""
    rows = app.mspflow.members.list(partnership=partnership)
    emit(
        rows,
        as_json,
        lambda: (
            "\n".join(
                f"{r.user} ({r.role})"
                + (f" for {r.partner}" if r.partner else "")
                + f", added by {r.added_by} {r.added_at[:10]}"
                for r in rows
            )
            or "no members"
        ),
    )


@click.group(cls=Group)
def db() -> None:
    """Upgrade the database schema and show its revision."""


@db.command("upgrade")
@json_option
@pass_app
def db_upgrade(app: App, as_json: bool) -> None:
    """Bring the database to this mspflow's schema (one transaction; safe to repeat).

    Back up the database first; a database made by a newer mspflow is refused.
    """
    from mspflow.services.database import upgrade

    done = upgrade(app.db, actor=app.actor_name)
    data = {"database": done.database, "from": done.before, "to": done.after}
    if done.before == done.after:
        text = f"database at {done.database} is up to date (revision {done.after})"
    else:
        text = (
            f"database at {done.database} upgraded from revision "
            f"{done.before or 'none'} to {done.after}"
        )
    emit(data, as_json, text)


@db.command("current")
@json_option
@pass_app
def db_current(app: App, as_json: bool) -> None:
    """The database's schema revision and version, and whether it needs upgrading."""
    from mspflow.services.database import current

    where, found = current(app.db, actor=app.actor_name)
    advice = {
        "current": "up to date",
        "behind": "run 'mspflow db upgrade'",
        "legacy": "made before migrations; run 'mspflow db upgrade'",
        "empty": "empty; run 'mspflow init'",
        "foreign": "not an mspflow database",
        "newer": "made by a newer mspflow; upgrade mspflow",
        "unknown": "unknown to this mspflow",
    }[found.state]
    emit(
        {"database": where, **found.as_dict()},
        as_json,
        f"revision {found.revision or 'none'} (schema version {found.schema_version}); "
        f"this mspflow's head is {found.head}: {advice}",
    )


def register(main: click.Group) -> None:
    for command in (init, user, member, db):
        main.add_command(command)
