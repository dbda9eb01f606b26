"""The ``datafast`` command: serve, worker, migrate, and first-run administration."""

from __future__ import annotations

import asyncio
import getpass
import os
import shutil
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from sqlalchemy.ext.asyncio import AsyncSession

from datafast import __version__
from datafast.db.config import sqlalchemy_config
from datafast.db.migrate import migrate_clickhouse, migrate_config_db
from datafast.db.retention import apply_retention
from datafast.errors import AppError
from datafast.lib.eventstore import create_event_store
from datafast.log import configure_logging
from datafast.settings import Settings, SettingsError, load_settings

T = TypeVar("T")


def _settings(ctx: click.Context) -> Settings:
    settings: Settings = ctx.obj
    return settings


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="datafast")
@click.pass_context
def main(ctx: click.Context) -> None:
    """DataFast: self-hostable, revenue-first web analytics.

    Settings come from the environment and an optional .env file (see the README).
    """
    try:
        settings = load_settings()
    except SettingsError as exc:
        click.echo(f"datafast: configuration error: {exc}", err=True)
        sys.exit(2)
    configure_logging(settings.log_format, settings.log_level)
    ctx.obj = settings


@main.command()
@click.option("--host", help="Address to listen on [default: HOST or 127.0.0.1].")
@click.option("--port", type=click.IntRange(1, 65535), help="Port [default: PORT or 8000].")
@click.option("--workers", type=click.IntRange(min=1), help="Worker processes [default: WORKERS or 1].")
@click.pass_context
def serve(ctx: click.Context, host: str | None, port: int | None, workers: int | None) -> None:
    """Serve the dashboard, the API and /track (migrates first in embedded mode)."""
    from granian import Granian
    from granian.constants import Interfaces

    settings = _settings(ctx)
    workers = workers or settings.workers
    if workers > 1 and (problem := settings.multi_process_problem()):
        raise click.UsageError(f"--workers {workers} is not possible: {problem}.")
    host, port = host or settings.host, port or settings.port
    # Before the workers import prometheus-client: they all write their samples to this (emptied)
    # directory, and /metrics sums them (datafast.lib.metrics).
    metrics_dir = settings.data_dir / "prometheus"
    shutil.rmtree(metrics_dir, ignore_errors=True)
    metrics_dir.mkdir(parents=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    click.echo(f"DataFast {__version__} ({settings.mode} mode) on http://{host}:{port}")
    Granian(
        "datafast.app:create_asgi",
        factory=True,
        interface=Interfaces.ASGI,
        address=host,
        port=port,
        workers=workers,
        log_access=False,
    ).serve()


@main.command()
@click.option(
    "--concurrency",
    type=click.IntRange(min=1),
    default=10,
    show_default=True,
    help="Jobs run at once by this process.",
)
@click.option(
    "--check",
    is_flag=True,
    help="Run no jobs: exit 0 when Valkey (the queue) answers PING within 5 s, 1 otherwise "
    "(a container liveness probe).",
)
@click.pass_context
def worker(ctx: click.Context, concurrency: int, check: bool) -> None:
    """Run background jobs from the Valkey queue (scaled mode)."""
    from datafast.worker import run_worker

    settings = _settings(ctx)
    if settings.valkey_url is None:
        raise click.UsageError(
            "datafast worker needs VALKEY_URL; without it jobs run inside `datafast serve`."
        )
    if check:
        import valkey

        client = valkey.Valkey.from_url(settings.valkey_url, socket_timeout=5, socket_connect_timeout=5)
        try:
            client.ping()
        except valkey.ValkeyError as error:
            click.echo(f"datafast worker --check: the queue (VALKEY_URL) does not answer: {error}", err=True)
            ctx.exit(1)
        finally:
            client.close()  # type: ignore[no-untyped-call]  # valkey-py leaves it unannotated
        click.echo("datafast worker --check: the queue answers")
        return
    asyncio.run(run_worker(settings, concurrency))


@main.command()
@click.pass_context
def migrate(ctx: click.Context) -> None:
    """Bring the config database and ClickHouse up to date (idempotent)."""
    settings = _settings(ctx)

    async def run() -> None:
        config = sqlalchemy_config(settings)
        before, after = await migrate_config_db(config.get_engine())
        await config.get_engine().dispose()
        click.echo(
            f"config database: {'revision ' + str(after) if before == after else f'{before} -> {after}'}"
        )
        store = create_event_store(settings)
        try:
            applied = await migrate_clickhouse(store)
            expiring = await apply_retention(store, settings.data_retention_days)
        finally:
            await store.close()
        click.echo(f"clickhouse: {'applied ' + ', '.join(map(str, applied)) if applied else 'up to date'}")
        if expiring:
            kept = f"{settings.data_retention_days} days" if settings.data_retention_days else "forever"
            click.echo(f"data retention: traffic kept {kept} ({', '.join(expiring)})")

    _run(run)


@main.command()
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@click.pass_context
def backup(ctx: click.Context, folder: Path) -> None:
    """Back up the config database and ClickHouse into FOLDER (safe while DataFast runs)."""
    from datafast.db import backup as backups

    settings = _settings(ctx)

    async def run() -> None:
        engine = sqlalchemy_config(settings).get_engine()
        store = create_event_store(settings)
        try:
            await backups.backup(folder, settings.database_url, engine, store, click.echo)
        except backups.BackupError as exc:
            raise click.ClickException(str(exc)) from None
        except Exception as exc:
            if settings.embedded_clickhouse and "chdb engine" in str(exc):
                raise click.ClickException(
                    "the embedded ClickHouse is open in another process (`datafast serve`?): "
                    "stop it, back up, start it again (see the README's Backup and restore)"
                ) from None
            raise
        finally:
            await store.close()
            await engine.dispose()

    _run(run)


@main.command()
@click.argument("folder", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.option("--force", is_flag=True, help="Replace the data of an install that is not empty.")
@click.pass_context
def restore(ctx: click.Context, folder: Path, force: bool) -> None:
    """Restore a backup made by `datafast backup` (stop DataFast first)."""
    from datafast.db import backup as backups

    settings = _settings(ctx)

    async def run() -> None:
        engine = sqlalchemy_config(settings).get_engine()
        store = create_event_store(settings)
        try:
            await store.ensure_database()
            await backups.restore(folder, engine, store, click.echo, force=force)
        except backups.BackupError as exc:
            raise click.ClickException(str(exc)) from None
        finally:
            await store.close()
            await engine.dispose()

    _run(run)


def _run(make: Callable[[], Awaitable[T]]) -> T:
    try:
        return asyncio.run(make())  # type: ignore[arg-type]
    except AppError as exc:
        raise click.ClickException(str(exc.detail)) from None


async def _in_session(settings: Settings, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run ``work`` in one transaction; in embedded mode the schema is brought up to date first."""
    config = sqlalchemy_config(settings)
    engine = config.get_engine()
    try:
        if settings.migrate_on_start:
            await migrate_config_db(engine)
        async with config.get_session() as session:
            result = await work(session)
            await session.commit()
            return result
    finally:
        await engine.dispose()


@main.group()
def user() -> None:
    """Manage users."""


@user.command("create")
@click.option("--email", required=True, help="The user's email (their login).")
@click.option("--password", help="At least 8 characters with a number [default: prompt].")
@click.option("--name", help="Display name.")
@click.option(
    "--superuser/--no-superuser",
    default=True,
    show_default=True,
    help="Administrators of the install (the first user should be one).",
)
@click.pass_context
def user_create(
    ctx: click.Context, email: str, password: str | None, name: str | None, superuser: bool
) -> None:
    """Create a user, e.g. the first admin of a self-hosted install."""
    from datafast.domain.accounts.services import UserService

    if password is None:
        password = getpass.getpass("Password: ")
        if getpass.getpass("Repeat: ") != password:
            raise click.ClickException("the passwords differ")
    secret = password

    async def work(session: AsyncSession) -> Any:
        return await UserService(session=session).create_user(
            email, secret, name, superuser=superuser, verified=True
        )

    created = _run(lambda: _in_session(_settings(ctx), work))
    click.echo(f"created user {created.email} ({created.id})")


@user.command("reset-password")
@click.option("--email", required=True, help="The user's email.")
@click.option("--password", help="At least 8 characters with a number [default: prompt].")
@click.pass_context
def user_reset_password(ctx: click.Context, email: str, password: str | None) -> None:
    """Set a user's password and end all their credentials (sessions, API keys, share links they made)."""
    from datafast.domain.accounts.credentials import revoke_credentials
    from datafast.domain.accounts.services import UserService, hash_password, validate_password

    if password is None:
        password = getpass.getpass("New password: ")
        if getpass.getpass("Repeat: ") != password:
            raise click.ClickException("the passwords differ")
    secret = password

    async def work(session: AsyncSession) -> Any:
        found = await UserService(session=session).get_by_email(email)
        if found is None:
            raise click.ClickException(f"no user with the email {email}")
        validate_password(secret)
        found.password_hash = hash_password(secret)
        await revoke_credentials(session, found.id)
        return found

    changed = _run(lambda: _in_session(_settings(ctx), work))
    click.echo(f"password changed for {changed.email}; their sessions, API keys and share links were ended")


@user.command("verify")
@click.option("--email", required=True, help="The user's email.")
@click.pass_context
def user_verify(ctx: click.Context, email: str) -> None:
    """Mark a user's email address as confirmed (installs without mail, or a user you know)."""
    from datafast.domain.accounts.services import UserService

    async def work(session: AsyncSession) -> Any:
        found = await UserService(session=session).mark_verified(email)
        if found is None:
            raise click.ClickException(f"no user with the email {email}")
        return found

    verified = _run(lambda: _in_session(_settings(ctx), work))
    click.echo(f"{verified.email} is verified")


@main.group()
def apikey() -> None:
    """Manage API keys."""


@apikey.command("create")
@click.option("--user", "email", required=True, help="Email of the user the key acts as.")
@click.option(
    "--site", "sites", multiple=True, type=click.UUID, help="Limit the key to this site (repeatable)."
)
@click.option("--read-only", is_flag=True, help="The key can read but not change anything.")
@click.option("--name", default="CLI key", show_default=True, help="A label to recognise the key by.")
@click.pass_context
def apikey_create(ctx: click.Context, email: str, sites: tuple[Any, ...], read_only: bool, name: str) -> None:
    """Create an API key and print it (it is shown this once)."""
    from datafast.domain.accounts.apikeys import create_api_key
    from datafast.domain.accounts.services import UserService

    async def work(session: AsyncSession) -> Any:
        found = await UserService(session=session).get_by_email(email)
        if found is None:
            raise click.ClickException(f"no user with the email {email}")
        key, _ = await create_api_key(session, found, name, list(sites) or None, read_only=read_only)
        return key

    key = _run(lambda: _in_session(_settings(ctx), work))
    click.echo(key)


@main.group()
def site() -> None:
    """Manage websites."""


@site.command("create")
@click.option("--domain", required=True, help="The site's domain, e.g. example.com.")
@click.option("--owner", "owner_email", required=True, help="Email of the user who owns it.")
@click.option("--name", help="Display name [default: the domain].")
@click.option("--timezone", default="UTC", show_default=True, help="IANA timezone for reports.")
@click.option("--currency", default="USD", show_default=True, help="ISO 4217 currency for revenue.")
@click.pass_context
def site_create(
    ctx: click.Context, domain: str, owner_email: str, name: str | None, timezone: str, currency: str
) -> None:
    """Register a website and print its tracking snippet."""
    from datafast.domain.accounts.services import UserService
    from datafast.domain.sites.services import WebsiteService

    settings = _settings(ctx)

    async def work(session: AsyncSession) -> Any:
        owner = await UserService(session=session).get_by_email(owner_email)
        if owner is None:
            raise click.ClickException(
                f"no user with the email {owner_email}: run `datafast user create` first"
            )
        return await WebsiteService(session=session).create_site(owner, domain, name, timezone, currency)

    website = _run(lambda: _in_session(settings, work))
    click.echo(f"created site {website.domain} ({website.id})")
    click.echo("Add this to every page, inside <head>:")
    click.echo(
        f'  <script defer data-website-id="{website.id}" data-domain="{website.domain}" '
        f'src="{settings.base_url}/js/script.js"></script>'
    )


@main.group()
def rates() -> None:
    """Daily exchange rates for converting payments to each site's currency."""


@rates.command("load")
@click.argument("path", type=click.File("r", encoding="utf-8"))
@click.pass_context
def rates_load(ctx: click.Context, path: Any) -> None:
    """Load rates from a CSV file: date,base,quote,rate lines or the ECB's eurofxref-hist.csv."""
    from datafast.domain.revenue.rates import load_rates
    from datafast.domain.revenue.store import PaymentStore

    settings = _settings(ctx)
    text = path.read()

    async def run() -> tuple[int, int]:
        store = create_event_store(settings)
        try:
            await migrate_clickhouse(store)
            return await load_rates(PaymentStore(store), text, source=getattr(path, "name", "csv"))
        finally:
            await store.close()

    try:
        loaded, converted = _run(run)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"loaded {loaded} exchange rates; converted {converted} payments that had no rate")


@main.group()
def privacy() -> None:
    """Per-visitor privacy requests: export or erase what a site holds about one person."""


def _privacy_options(command: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(
        [
            click.option("--site", "site_id", required=True, type=click.UUID, help="The site's id."),
            click.option("--visitor-id", help="The visitor id (the datafast_visitor_id cookie)."),
            click.option("--user-id", help="The user id your site passed to identify."),
            click.option("--email", help="Their email address (matched by its hash, as identify stores it)."),
        ]
    ):
        command = option(command)
    return command


def _privacy_request(
    settings: Settings,
    site_id: Any,
    subject_fields: tuple[str | None, str | None, str | None],
    work: Callable[[AsyncSession, Any, Any, Any], Awaitable[T]],
) -> T:
    """Run ``work(db, adapters, website, subject)`` in one transaction with the install's adapters."""
    from datafast.db.models import Website
    from datafast.jobs import JOBS
    from datafast.lib.adapters import create_adapters

    subject = _privacy_subject(subject_fields)

    async def in_session(session: AsyncSession) -> T:
        website = await session.get(Website, site_id)
        if website is None:
            raise click.ClickException(f"no site with the id {site_id}")
        adapters = await create_adapters(settings, JOBS)
        try:
            return await work(session, adapters, website, subject)
        finally:
            await adapters.close()

    return _run(lambda: _in_session(settings, in_session))


def _privacy_subject(subject_fields: tuple[str | None, str | None, str | None]) -> Any:
    from datafast.domain.sites.privacy import Subject

    try:
        return Subject.of(*subject_fields)
    except AppError as exc:
        raise click.UsageError(str(exc.detail).replace("_id", "-id")) from None


@privacy.command("export")
@_privacy_options
@click.option(
    "--output",
    "-o",
    type=click.File("w", encoding="utf-8"),
    default="-",
    help="Where the JSON goes [stdout].",
)
@click.pass_context
def privacy_export(
    ctx: click.Context,
    site_id: Any,
    visitor_id: str | None,
    user_id: str | None,
    email: str | None,
    output: Any,
) -> None:
    """Write everything held about one person on a site as JSON."""
    import msgspec

    from datafast.domain.sites.privacy import export_request

    async def work(session: AsyncSession, adapters: Any, website: Any, subject: Any) -> Any:
        return await export_request(session, adapters.event_store, website, subject, _cli_user())

    exported = _privacy_request(_settings(ctx), site_id, (visitor_id, user_id, email), work)
    output.write(msgspec.json.format(msgspec.json.encode(exported).decode()) + "\n")
    tables = ", ".join(exported.tables) or "none"
    click.echo(f"{len(exported.visitor_ids)} visitor ids, {exported.rows} rows ({tables})", err=True)


@privacy.command("erase")
@_privacy_options
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_context
def privacy_erase(
    ctx: click.Context,
    site_id: Any,
    visitor_id: str | None,
    user_id: str | None,
    email: str | None,
    yes: bool,
) -> None:
    """Delete one person's events and visits on a site; their payments are kept but unlinked."""
    from datafast.domain.analytics.cache import ResultCache
    from datafast.domain.ingest.process.sessions import ValkeySessionTracker
    from datafast.domain.sites.privacy import erase_request

    settings = _settings(ctx)
    _privacy_subject((visitor_id, user_id, email))  # a usage error before the question
    if not yes:
        click.confirm("Erase this person's data on the site? This cannot be undone", abort=True, err=True)

    async def work(session: AsyncSession, adapters: Any, website: Any, subject: Any) -> Any:
        forget = None
        if adapters.valkey is not None:
            tracker = ValkeySessionTracker(adapters.valkey)

            async def forget(site: str, visitors: Any) -> None:
                await tracker.forget(f"{site}:{v}" for v in visitors)

        return await erase_request(
            session,
            adapters.event_store,
            website,
            subject,
            _cli_user(),
            forget_visits=forget,
            changed=ResultCache(adapters.cache, settings.stats_cache_ttl).invalidate,
        )

    erased = _privacy_request(settings, site_id, (visitor_id, user_id, email), work)
    deleted = ", ".join(f"{n} {t}" for t, n in erased.deleted.items()) or "nothing"
    unlinked = ", ".join(f"{n} {t}" for t, n in erased.unlinked.items()) or "nothing"
    click.echo(f"erased {erased.visitors} visitor ids: deleted {deleted}; unlinked {unlinked}")


@main.command("import")
@click.argument("source", type=click.Choice(["plausible", "umami", "ga4"]))
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--site", "site_id", required=True, type=click.UUID, help="The site's id.")
@click.pass_context
def import_history(ctx: click.Context, source: str, file: Path, site_id: Any) -> None:
    """Import a site's history from SOURCE's export FILE (Plausible's CSV zip, Umami's website_event
    CSV, GA4's BigQuery NDJSON), here rather than on the job queue, printing its progress.

    Embedded mode: stop the server first (chDB's data belongs to one process)."""
    from sqlalchemy.ext.asyncio import AsyncEngine

    from datafast.db.models import Import, Website
    from datafast.domain.analytics.cache import ResultCache
    from datafast.domain.imports.service import create_import, run_import
    from datafast.jobs import JOBS
    from datafast.lib.adapters import create_adapters

    settings = _settings(ctx)
    data = file.read_bytes()

    async def progress(engine: AsyncEngine, import_id: Any) -> None:
        while True:
            await asyncio.sleep(0.5)
            async with AsyncSession(engine) as db:
                row = await db.get(Import, import_id)
            if row is not None:
                click.echo(f"\r{row.status} {row.progress:6.1%}", nl=False, err=True)

    async def run() -> Import | None:
        engine = sqlalchemy_config(settings).get_engine()
        try:
            if settings.migrate_on_start:
                await migrate_config_db(engine)
            async with AsyncSession(engine, expire_on_commit=False) as db:
                website = await db.get(Website, site_id)
                if website is None:
                    raise click.ClickException(f"no site with the id {site_id}")
                # The file is checked before ClickHouse is opened (and before anything is stored).
                row = await create_import(db, website, source, file.name, data, _cli_user())
                await db.commit()
            adapters = await create_adapters(settings, JOBS)
            try:
                if settings.migrate_on_start:
                    await migrate_clickhouse(adapters.event_store)
                reporter = asyncio.create_task(progress(engine, row.id))
                try:
                    finished = await run_import(engine, adapters.event_store, row.id)
                finally:
                    reporter.cancel()
                await ResultCache(adapters.cache, settings.stats_cache_ttl).invalidate([str(website.id)])
            finally:
                await adapters.close()
            async with AsyncSession(engine) as db:
                return finished or await db.get(Import, row.id)
        finally:
            await engine.dispose()

    finished = _run(run)
    click.echo("", err=True)
    if finished is None or finished.status != "done":
        raise click.ClickException(f"import failed: {finished.error if finished else 'not found'}")
    click.echo(f"imported {finished.rows} daily rows, {finished.first_day} to {finished.last_day}")
    for item in finished.summary:
        mark = "imported" if item["imported"] else "not imported"
        click.echo(f"  {item['item']}: {mark}{' (' + str(item['note']) + ')' if item['note'] else ''}")


def _cli_user() -> str:
    try:
        return f"cli ({getpass.getuser()})"
    except Exception:  # no user name in a container without /etc/passwd entry
        return "cli"


if __name__ == "__main__":  # pragma: no cover
    main()
