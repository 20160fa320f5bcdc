"""The ``tollway`` command: serve, worker, migrate, keys."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from tollway.config import get_settings

app = typer.Typer(help="Tollway: usage-based billing for APIs.", no_args_is_help=True, add_completion=False)
keys_app = typer.Typer(help="Manage API keys.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
rollups_app = typer.Typer(help="Maintain the meters' hourly rollups.", no_args_is_help=True)
app.add_typer(rollups_app, name="rollups")
users_app = typer.Typer(help="Manage console operators.", no_args_is_help=True)
app.add_typer(users_app, name="users")
payments_app = typer.Typer(help="Collect invoices through the payment provider (Stripe).", no_args_is_help=True)
app.add_typer(payments_app, name="payments")


def _version(value: bool) -> None:
    if value:
        from tollway import __version__

        typer.echo(f"tollway {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="print the version and exit")
    ] = False,
) -> None:
    """Tollway: usage-based billing for APIs."""


def _migrate() -> tuple[str | None, str | None]:
    """Apply the migrations, then rebase the events' transaction ids should the database have
    been restored into another cluster (``meter.fold.rebase_tx``)."""
    from tollway.db import make_engine, make_sessionmaker, session_scope
    from tollway.meter.fold import rebase_tx
    from tollway.migrations.runner import upgrade

    engine = make_engine(get_settings().database_url)
    try:
        revisions = upgrade(engine)
        with session_scope(make_sessionmaker(engine)) as session:
            rebase_tx(session)
        return revisions
    finally:
        engine.dispose()


def _preflight() -> None:
    """Refuse to start with webhook endpoints configured and no usable TOLLWAY_SECRET_KEY (their
    signing secrets could not be read), with a message saying what to set."""
    from tollway.db import make_engine, make_sessionmaker
    from tollway.notification.service import startup_problem

    settings = get_settings()
    engine = make_engine(settings.database_url)
    try:
        with make_sessionmaker(engine)() as session:
            problem = startup_problem(session, secret_key=settings.secret_key)
    finally:
        engine.dispose()
    if problem:
        typer.echo(f"error: {problem}", err=True)
        raise typer.Exit(code=1)


@app.command()
def migrate() -> None:
    """Apply database migrations (safe to run from several processes at once)."""
    before, after = _migrate()
    if before == after:
        typer.echo(f"database already at revision {after}")
    else:
        typer.echo(f"database migrated from revision {before or '(empty)'} to {after}")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8080,
    workers: Annotated[int, typer.Option(help="API worker processes")] = 1,
) -> None:
    """Apply migrations, then serve the API (and run the background worker in-process)."""
    import uvicorn

    from tollway import logs

    logs.configure()
    _migrate()
    _preflight()
    uvicorn.run(
        "tollway.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="info",
        log_config=None,  # keep logs.configure(): uvicorn's own config would replace it
        access_log=False,  # tollway.access logs route templates, never raw paths or queries
    )


@app.command()
def worker(
    once: Annotated[bool, typer.Option(help="run one billing run and one outbox drain, then exit")] = False,
) -> None:
    """Run the background worker alone: scheduled billing runs and the outbox. Stops on SIGTERM."""
    import signal

    from tollway import logs
    from tollway.db import make_engine, make_sessionmaker
    from tollway.worker import Worker

    logs.configure()
    _migrate()
    _preflight()
    settings = get_settings()
    engine = make_engine(settings.database_url)
    runner = Worker(make_sessionmaker(engine), settings)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: runner.stop())
    try:
        if once:
            runner.run_once()
            runner.payment_step()
        else:
            runner.run()
    finally:
        engine.dispose()


@keys_app.command("create")
def keys_create(
    scope: Annotated[str, typer.Option(help="admin | ingest")],
    name: Annotated[str | None, typer.Option(help="a label for the key")] = None,
    customer: Annotated[
        str | None, typer.Option(help="ingest keys only: the one customer this key may send events for")
    ] = None,
) -> None:
    """Create an API key. The key is printed alone on the last line; it is stored only hashed."""
    from tollway.auth.keys import SCOPES, create_key
    from tollway.db import make_engine, make_sessionmaker, session_scope

    if scope not in SCOPES:
        typer.echo(f"error: --scope must be one of: {', '.join(SCOPES)}", err=True)
        raise typer.Exit(code=2)
    if customer is not None and scope != "ingest":
        typer.echo("error: --customer is for ingest keys only", err=True)
        raise typer.Exit(code=2)
    _migrate()
    engine = make_engine(get_settings().database_url)
    try:
        with session_scope(make_sessionmaker(engine)) as session:
            key, secret = create_key(session, scope=scope, name=name, customer=customer)
            key_id = key.id
    finally:
        engine.dispose()
    typer.echo(f"created {scope} key {key_id}; store it now, it cannot be shown again:")
    typer.echo(secret)


@keys_app.command("list")
def keys_list() -> None:
    """List API keys (never the keys themselves: their first characters only)."""
    from tollway.auth.keys import list_keys
    from tollway.db import make_engine, make_sessionmaker

    _migrate()
    engine = make_engine(get_settings().database_url)
    try:
        with make_sessionmaker(engine)() as session:
            rows = list_keys(session)
    finally:
        engine.dispose()
    typer.echo(f"{'ID':<22} {'SCOPE':<7} {'PREFIX':<17} {'CREATED':<32} {'STATUS':<34} NAME")
    for key in rows:
        status = f"revoked {key.revoked_at.isoformat()}" if key.revoked_at else "active"
        typer.echo(
            f"{key.id:<22} {key.scope:<7} {key.prefix + '…':<17} {key.created_at.isoformat():<32} "
            f"{status:<34} {key.name or ''}"
        )


@keys_app.command("revoke")
def keys_revoke(key_id: Annotated[str, typer.Argument(help="the key's id (see `tollway keys list`)")]) -> None:
    """Revoke an API key: every server refuses it from the next request on."""
    from tollway.auth.keys import revoke_key
    from tollway.db import make_engine, make_sessionmaker, session_scope
    from tollway.errors import NotFound
    from tollway.kit.time import utcnow

    _migrate()
    engine = make_engine(get_settings().database_url)
    try:
        with session_scope(make_sessionmaker(engine)) as session:
            key = revoke_key(session, key_id, now=utcnow())
            revoked_at = key.revoked_at
    except NotFound as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(code=1) from None
    finally:
        engine.dispose()
    typer.echo(f"revoked {key_id} at {revoked_at.isoformat() if revoked_at else '?'}")


@rollups_app.command("rebuild")
def rollups_rebuild(
    meter: Annotated[str | None, typer.Option(help="one meter key; default: every meter")] = None,
) -> None:
    """Recompute rollups from the raw events (after a bulk import straight into the database), a
    chunk of customers per transaction so ingestion keeps going; shows the progress."""
    from tollway.db import make_engine, make_sessionmaker, session_scope
    from tollway.meter import rollup
    from tollway.meter.service import get_meter, list_all_meters

    _migrate()
    engine = make_engine(get_settings().database_url)
    factory = make_sessionmaker(engine)
    try:
        with session_scope(factory) as session:
            rows = [get_meter(session, meter)] if meter else list_all_meters(session)
            for row in rows:
                rollup.start_build(session, row, force=True)
            keys = [row.key for row in rows]
        for key in keys:
            with session_scope(factory) as session:
                done = rollup.build_step(session, key)
                row = get_meter(session, key)
                built, total = row.rollup_customers_built, row.rollup_customers_total or 0
            with typer.progressbar(length=max(total, 1), label=f"meter {key}", file=sys.stderr) as bar:
                bar.update(built)
                while not done:
                    with session_scope(factory) as session:
                        done = rollup.build_step(session, key)
                        now = get_meter(session, key).rollup_customers_built
                    bar.update(now - built)
                    built = now
                    if not sys.stderr.isatty():  # no bar drawn: a line per chunk for logs
                        typer.echo(f"meter {key}: {built}/{total} customers", err=True)
            typer.echo(f"meter {key}: built for {built} customers", err=True)
    finally:
        engine.dispose()
    typer.echo(f"rebuilt the rollups of {len(keys)} meter(s)")


@users_app.command("create")
def users_create(
    email: Annotated[str, typer.Option(help="the operator's e-mail address (the sign-in name)")],
    password: Annotated[str | None, typer.Option(help="the password (prefer --password-stdin)")] = None,
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="read the password from stdin")] = False,
) -> None:
    """Create a console operator (password stored as an argon2id hash)."""
    import sys

    from tollway.db import make_engine, make_sessionmaker, session_scope
    from tollway.errors import TollwayError
    from tollway.kit.time import utcnow
    from tollway.operator.service import create_operator

    if (password is None) == (not password_stdin):
        typer.echo("error: give exactly one of --password or --password-stdin", err=True)
        raise typer.Exit(code=2)
    secret = sys.stdin.readline().rstrip("\r\n") if password_stdin else password
    assert secret is not None
    _migrate()
    engine = make_engine(get_settings().database_url)
    try:
        with session_scope(make_sessionmaker(engine)) as session:
            operator = create_operator(session, email=email, password=secret, now=utcnow())
            op_id, op_email = operator.id, operator.email
    except TollwayError as exc:
        detail = "; ".join(f"{e.field}: {e.message}" for e in exc.errors) or exc.message
        typer.echo(f"error: {detail}", err=True)
        raise typer.Exit(code=2) from None
    finally:
        engine.dispose()
    typer.echo(f"created operator {op_id} <{op_email}>")


@users_app.command("list")
def users_list() -> None:
    """List console operators (e-mail, created, last sign-in, locked)."""
    from tollway.db import make_engine, make_sessionmaker, session_scope
    from tollway.kit.time import utcnow
    from tollway.operator.service import list_operators

    _migrate()
    engine = make_engine(get_settings().database_url)
    try:
        with session_scope(make_sessionmaker(engine)) as session:
            now = utcnow()
            for op in list_operators(session):
                last = op.last_sign_in_at.isoformat() if op.last_sign_in_at else "never"
                locked = " locked" if op.locked_until and op.locked_until > now else ""
                typer.echo(f"{op.id}\t{op.email}\tcreated {op.created_at.isoformat()}\tlast sign-in {last}{locked}")
    finally:
        engine.dispose()


@payments_app.command("sync")
def payments_sync(
    since: Annotated[str | None, typer.Option(help="RFC 3339: only invoices issued at or after this")] = None,
) -> None:
    """Push finalized invoices that were never pushed (and retry pending ones) now. Idempotent."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from tollway.db import make_engine, make_sessionmaker
    from tollway.kit.time import parse_rfc3339
    from tollway.payment.providers import configured_provider
    from tollway.payment.sync import PaymentSync

    settings = get_settings()
    provider = configured_provider(settings)
    if provider is None:
        typer.echo("error: payments are off: set TOLLWAY_STRIPE_API_KEY", err=True)
        raise typer.Exit(code=2)
    try:
        start = parse_rfc3339(since) if since is not None else None
    except ValueError as exc:
        typer.echo(f"error: --since {exc}", err=True)
        raise typer.Exit(code=2) from exc
    _migrate()
    engine = make_engine(settings.database_url)
    try:
        sync = PaymentSync(make_sessionmaker(engine), provider)
        links = sync.queue_unpushed(since=start)
        done = failed = 0
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, transient=False) as progress:
            task = progress.add_task(f"pushing to {provider.name}", total=len(links))
            for link_id in links:
                if sync.process(link_id):
                    done += 1
                else:
                    failed += 1
                progress.advance(task)
    finally:
        engine.dispose()
    typer.echo(f"{done} invoice(s) synced with {provider.name}, {failed} failed (the worker retries them)")
    if failed:
        raise typer.Exit(code=1)


def main() -> None:
    from pydantic import ValidationError

    try:
        get_settings()
    except ValidationError as exc:  # a bad TOLLWAY_* variable: say which, without a traceback
        for error in exc.errors():
            name = "TOLLWAY_" + "_".join(str(p) for p in error["loc"]).upper()
            typer.echo(f"configuration error: {name}: {error['msg'].removeprefix('Value error, ')}", err=True)
        raise SystemExit(2) from None
    app()


if __name__ == "__main__":
    main()
