"""The `pixwave` command."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
import uvicorn
from rich.console import Console
from rich.table import Table
from sqlalchemy import select

from pixwave.config import Settings, get_settings
from pixwave.sandbox.cli import sandbox_app

app = typer.Typer(help="PixWave: a Pix wallet over several payment gateways.", no_args_is_help=True)
admin_app = typer.Typer(help="Users and tokens.", no_args_is_help=True)
pix_app = typer.Typer(
    help="BR Code (Pix copia e cola) tools; pure, no network.", no_args_is_help=True
)
db_app = typer.Typer(help="Schema tools.", no_args_is_help=True)
app.add_typer(admin_app, name="admin")
app.add_typer(pix_app, name="pix")
app.add_typer(db_app, name="db")
app.add_typer(sandbox_app, name="sandbox")
console = Console(stderr=True)


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")


def _log_to_stderr() -> None:
    """Commands whose output is their result (JSON, a token) keep stdout for it."""
    from pixwave.observability.logging import configure_logging

    configure_logging(get_settings().log_level, json=False, to_stderr=True)


def _settings() -> Settings:
    """The settings, or a clean exit 2 when they mix real gateways and simulators or name a
    queue that cannot work (SQS without Redis or without its queue URL)."""
    from pixwave.gateways.registry import GatewayModeError, simulated_gateways
    from pixwave.worker.broker import broker_problem

    settings = get_settings()
    try:
        simulated_gateways(settings)
    except GatewayModeError as exc:
        console.print(f"[red]refusing to start:[/] {exc}")
        raise typer.Exit(2) from None
    if problem := broker_problem(settings):
        console.print(f"[red]refusing to start:[/] {problem}")
        raise typer.Exit(2)
    return settings


def _shared_queue(settings: Settings) -> bool:
    """Jobs go through a queue every process shares (Redis streams or SQS), not in memory."""
    return settings.queue_backend in ("redis", "sqs")


_NEEDS_SHARED_QUEUE = (
    "needs Redis (REDIS_URL or REDIS_HOST), with the jobs on Redis streams or on SQS "
    "(QUEUE_CONNECTION=sqs and AWS_SQS_QUEUE)"
)


_upgraded: set[str] = set()


async def _ready_database(settings: Settings) -> None:
    """The embedded default has no separate deployment step: any command that opens its
    SQLite file brings the schema up to date first, so every command works in a fresh folder
    (a MySQL schema is migrated by the operator, with `pixwave migrate`)."""
    url = settings.sqlalchemy_url
    if settings.is_embedded and url not in _upgraded:
        from pixwave.migrate import upgrade_async

        await upgrade_async(url)
        _upgraded.add(url)


# --- servers ---------------------------------------------------------------------------------


@app.command()
def up(
    host: Annotated[str | None, typer.Option(help="Interface (default HOST or 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default PORT or 8000).")] = None,
) -> None:
    """Run everything in one process on the embedded default (SQLite under ./var)."""
    from pixwave.migrate import upgrade
    from pixwave.sandbox.embedded import ServedAddress

    settings = _settings()
    host = host or settings.host
    port = port or settings.port
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.sqlalchemy_url)
    _upgraded.add(settings.sqlalchemy_url)
    token = asyncio.run(_bootstrap_admin(settings))
    # One process is the whole deployment: it also runs the jobs and the scheduler.
    os.environ["RUN_JOBS_IN_API"] = "true"
    base = f"http://{'localhost' if host in {'127.0.0.1', '0.0.0.0'} else host}:{port}"  # noqa: S104
    console.print(f"[bold green]PixWave[/] is starting on [bold]{base}[/]")
    console.print(f"  API docs:  {base}/docs")
    console.print(f"  Database:  {settings.sqlalchemy_url}")
    if token:
        console.print("  Admin token (shown once, keep it):")
        console.print(f"    [bold yellow]{token}[/]", soft_wrap=True)
    else:
        console.print(
            "  Admin token: already issued; `pixwave admin create-token --admin` makes another"
        )
    # Other commands (`pixwave reconcile`) reach this process's simulators at this address.
    with ServedAddress.recorded(settings, host=host, port=port):
        _serve(settings, host, port, workers=1)


@app.command()
def api(
    host: Annotated[str | None, typer.Option(help="Interface (default HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default PORT).")] = None,
    workers: Annotated[int, typer.Option(help="Processes serving the API.")] = 1,
) -> None:
    """Serve the HTTP API only (on MySQL the schema must be migrated already)."""
    from pixwave.gateways.registry import find, simulated_gateways

    settings = _settings()
    if workers > 1 and not _shared_queue(settings):
        console.print(
            f"[red]`--workers` above 1 {_NEEDS_SHARED_QUEUE}: with the in-process queue each "
            "worker would run its own jobs, scheduler and sandboxes[/]"
        )
        raise typer.Exit(2)
    simulated = simulated_gateways(settings)
    if workers > 1 and simulated:
        commands = ", ".join(
            f"`pixwave sandbox {spec.family} --port {spec.sandbox_port}`"
            for spec in dict.fromkeys(find(name).spec for name in simulated)
        )
        console.print(
            f"[red]`--workers` above 1 with built-in simulators ({', '.join(simulated)}): each "
            "worker process would mount its own, and a payment made on one would be unknown to "
            f"the others. Run the simulators on their own ({commands}) and point the "
            "connectors at them (each gateway's *_BASE_URL, with the credentials in "
            "docs/sandbox.md), or serve with one worker.[/]"
        )
        raise typer.Exit(2)
    asyncio.run(_ready_database(settings))
    _serve(settings, host or settings.host, port or settings.port, workers=workers)


def _serve(settings: Settings, host: str, port: int, *, workers: int) -> None:
    from pixwave.observability.logging import configure_logging
    from pixwave.observability.metrics import prepare_multiprocess_dir, remove_multiprocess_dir

    configure_logging(settings.log_level, json=not sys.stderr.isatty(), role="api")
    # Several uvicorn workers: one metrics directory they all write and /metrics aggregates.
    metrics_dir = prepare_multiprocess_dir(workers)
    # The app factory reads Settings again in each worker: hand it the address really used,
    # which is also how the connectors reach the simulators mounted in this API.
    os.environ["HOST"], os.environ["PORT"] = host, str(port)
    get_settings.cache_clear()
    try:
        _run_uvicorn(settings, host, port, workers)
    finally:
        remove_multiprocess_dir(metrics_dir)


def _run_uvicorn(settings: Settings, host: str, port: int, workers: int) -> None:
    uvicorn.run(
        "pixwave.app:create_served_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=settings.log_level.lower(),
        access_log=False,
        # The client address (and so the per-address rate limits) comes from X-Forwarded-For
        # only when the peer is one of these proxies (docs/security.md, "Rate limiting").
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        # Its lines go through PixWave's logging (ECS JSON), in the supervisor process too.
        log_config=None,
        # uvicorn kills a worker that does not answer its supervisor's ping within this many
        # seconds — 5 by default, less than a fresh interpreter needs to import the app on a
        # busy machine, so workers were killed while starting, over and over (Gunicorn waits 30).
        timeout_worker_healthcheck=30,
        loop="uvloop",
        http="httptools",
    )


@app.command()
def worker(
    processes: Annotated[
        int | None, typer.Option(help="Worker processes (default WORKER_PROCESSES).")
    ] = None,
    concurrency: Annotated[
        int | None, typer.Option(help="Jobs at once per process (default WORKER_CONCURRENCY).")
    ] = None,
) -> None:
    """Run background workers (payments, webhooks) from the shared queue (Redis or SQS).

    SIGTERM or Ctrl-C: no new jobs; running ones finish (25 s at most) and it exits 0."""
    from pixwave.observability.metrics import prepare_multiprocess_dir, remove_multiprocess_dir
    from pixwave.worker.runner import run_workers

    settings = _settings()
    if not _shared_queue(settings):
        console.print(f"[red]`pixwave worker` {_NEEDS_SHARED_QUEUE}[/]")
        raise typer.Exit(2)
    if concurrency is not None:
        os.environ["WORKER_CONCURRENCY"] = str(concurrency)
        get_settings.cache_clear()
    count = processes or settings.worker_processes
    metrics_dir = prepare_multiprocess_dir(count)  # several processes: one server adds them up
    try:
        run_workers(count)
    finally:
        remove_multiprocess_dir(metrics_dir)


@app.command()
def scheduler() -> None:
    """Kick periodic jobs (reconciliation sweep, gateway probes); run exactly one (others wait)."""
    from pixwave.worker.runner import run_scheduler_process

    if not _shared_queue(_settings()):
        console.print(f"[red]`pixwave scheduler` {_NEEDS_SHARED_QUEUE}[/]")
        raise typer.Exit(2)
    run_scheduler_process()


@app.command()
def reconcile(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Ask the gateways about every unfinished payment now and move each one on.

    Exits 2, naming them, when a gateway could not be reached; that gateway's payments are
    left untouched."""
    _log_to_stderr()
    from pixwave.payments.reconcile import reconcile_all

    settings = _settings()
    asyncio.run(_ready_database(settings))
    summary = asyncio.run(reconcile_all(settings))
    if as_json:
        _print_json(summary)
    else:
        table = Table(title="Reconciliation")
        table.add_column("status after")
        table.add_column("transactions", justify="right")
        for status, count in sorted(summary["after"].items()):
            table.add_row(status, str(count))
        Console().print(table)
        console.print(f"examined {summary['examined']} unfinished transactions")
    if summary["unreachable"]:
        for gateway, outcome in sorted(summary["unreachable"].items()):
            console.print(f"[red]could not reach {gateway}[/] ({outcome})")
        skipped = sum(summary["skipped"].values())
        console.print(f"[red]{skipped} transaction(s) left untouched[/]")
        if summary["simulators_at"]:
            console.print(
                f"the simulated gateways live in a running `pixwave up`; none answered at "
                f"{summary['simulators_at']} (start it, or run this with its PORT)"
            )
        raise typer.Exit(2)


@app.command()
def migrate() -> None:
    """Bring the database schema up to date (and Redis keys a release renamed)."""
    from pixwave.migrate import upgrade

    settings = get_settings()
    upgrade(settings.sqlalchemy_url)
    console.print("[green]schema is up to date[/]")
    if settings.redis_dsn:
        carried = asyncio.run(_carry_redis_keys(settings.redis_dsn))
        if carried:
            console.print(f"gateway settings carried to the new Redis keys: {', '.join(carried)}")


async def _carry_redis_keys(url: str) -> list[str]:
    from redis.asyncio import Redis

    from pixwave.gateways.health import adopt_legacy_settings

    redis = Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
    try:
        return await adopt_legacy_settings(redis)
    finally:
        await redis.aclose()


@db_app.command("check")
def db_check() -> None:
    """Fail if the models and the migrations disagree (alembic check)."""
    from pixwave.migrate import check

    check(get_settings().sqlalchemy_url)


# --- admin -----------------------------------------------------------------------------------


@admin_app.callback()
def _admin() -> None:
    """Every admin command prints its result on stdout (JSON, a token): logs go to stderr."""
    _log_to_stderr()


async def _with_session(fn: Any, settings: Settings | None = None) -> Any:
    from pixwave.db import create_engine, create_sessionmaker

    settings = settings or get_settings()
    await _ready_database(settings)
    engine = create_engine(settings)
    try:
        async with create_sessionmaker(engine)() as session, session.begin():
            return await fn(session)
    finally:
        await engine.dispose()


async def _bootstrap_admin(settings: Settings) -> str | None:
    """On the very first start, make an operator and return its token; afterwards None."""
    from pixwave.accounts import service
    from pixwave.accounts.models import Role, User

    async def run(session: Any) -> str | None:
        exists = await session.scalar(select(User.id).where(User.role == Role.ADMIN).limit(1))
        if exists is not None:
            return None
        user_id = await service.create_admin(session, name="Operator", email="admin@pixwave.local")
        created = await service.issue_token(session, user_id=user_id, name="bootstrap")
        return created.token

    result: str | None = await _with_session(run, settings)
    return result


@admin_app.command("create-user")
def create_user(
    name: Annotated[str, typer.Option(help="Full name or company name.")],
    email: Annotated[str, typer.Option(help="E-mail address.")],
    document: Annotated[str, typer.Option(help="CPF or CNPJ.")],
    admin: Annotated[
        bool, typer.Option("--admin", help="An operator instead of a wallet user.")
    ] = False,
) -> None:
    """Create a user (with a wallet unless --admin) and print it as JSON."""
    from pydantic import ValidationError

    from pixwave.accounts import service
    from pixwave.accounts.models import Role
    from pixwave.accounts.schemas import UserCreate
    from pixwave.exceptions import PixWaveError

    try:
        data = UserCreate(
            name=name, email=email, document=document, role=Role.ADMIN if admin else Role.USER
        )
        user = asyncio.run(_with_session(lambda s: service.create_user(s, data)))
    except ValidationError as exc:
        console.print(f"[red]invalid input:[/] {exc.errors()[0]['msg']}")
        raise typer.Exit(2) from exc
    except PixWaveError as exc:
        console.print(f"[red]{exc.code}:[/] {exc.message}")
        raise typer.Exit(1) from exc
    _print_json(user.model_dump(mode="json"))


@admin_app.command("create-token")
def create_token(
    admin: Annotated[
        bool, typer.Option("--admin", help="A token for the operator account.")
    ] = False,
    user_id: Annotated[str | None, typer.Option(help="The user the token is for.")] = None,
    name: Annotated[str, typer.Option(help="A label for the token.")] = "",
) -> None:
    """Issue an API token and print it once (only its hash is stored)."""
    from pixwave.accounts import service
    from pixwave.accounts.models import Role, User
    from pixwave.exceptions import PixWaveError
    from pixwave.kit.ids import new_id

    if admin == (user_id is not None):
        console.print("[red]pass exactly one of --admin or --user-id[/]")
        raise typer.Exit(2)

    async def run(session: Any) -> Any:
        target: str | None = user_id
        if admin:
            target = await session.scalar(
                select(User.id)
                .where(User.role == Role.ADMIN, User.deactivated_at.is_(None))
                .order_by(User.id)
                .limit(1)
            )
            if target is None:
                # No active operator (none yet, or every one deactivated): a new one, under a
                # fresh address when the bootstrap one is taken by a deactivated operator.
                taken = await session.scalar(
                    select(User.id).where(User.email == "admin@pixwave.local")
                )
                email = f"admin-{new_id('op')[-8:].lower()}@pixwave.local" if taken else None
                target = await service.create_admin(
                    session, name="Operator", email=email or "admin@pixwave.local"
                )
        assert target is not None
        return await service.issue_token(session, user_id=target, name=name or "cli")

    try:
        created = asyncio.run(_with_session(run))
    except PixWaveError as exc:
        console.print(f"[red]{exc.code}:[/] {exc.message}")
        raise typer.Exit(1) from exc
    console.print(f"token for {created.user_id} (shown once):")
    sys.stdout.write(f"{created.token}\n")


async def _announce_evictions(settings: Settings, run: Any) -> Any:
    """Run ``run(session, evictions)`` in a transaction; once it commits, tell every running
    API process (through Redis) to forget the tokens it revoked."""
    from redis.asyncio import Redis

    from pixwave.accounts.revocation import TokenEvictions
    from pixwave.unit_of_work import flush_and_commit

    redis = (
        Redis.from_url(settings.redis_dsn, socket_timeout=settings.redis_timeout)
        if settings.redis_dsn
        else None
    )
    evictions = TokenEvictions(None, redis)

    async def in_transaction(session: Any) -> Any:
        result = await run(session, evictions)
        await flush_and_commit(session)  # runs the evictions the service queued
        return result

    try:
        return await _with_session(in_transaction, settings)
    finally:
        if redis is not None:
            await redis.aclose()


def _admin_call(run: Any) -> Any:
    """Run an admin command's transaction; a PixWaveError is a clean exit 1 with its code."""
    from pixwave.exceptions import PixWaveError

    settings = get_settings()
    try:
        return asyncio.run(_announce_evictions(settings, run))
    except PixWaveError as exc:
        console.print(f"[red]{exc.code}:[/] {exc.message}")
        raise typer.Exit(1) from exc


@admin_app.command("list-tokens")
def list_tokens(
    user_id: Annotated[str, typer.Option(help="Whose tokens.")],
) -> None:
    """Print a user's tokens as JSON (prefix, created, last used, revoked — never the secret)."""
    from pixwave.accounts import service

    async def run(session: Any, _evictions: Any) -> Any:
        return await service.list_tokens(session, user_id, limit=1000, starting_after=None)

    _print_json([token.model_dump(mode="json") for token in _admin_call(run)])


@admin_app.command("revoke-token")
def revoke_token(
    token_id: Annotated[str, typer.Argument(help="The token's id (tok_…), as list-tokens shows.")],
) -> None:
    """Revoke a token; every running API process stops accepting it at once (through Redis)."""
    from pixwave.accounts import service

    async def run(session: Any, evictions: Any) -> Any:
        return await service.revoke_token(session, evictions, token_id=token_id, user_id=None)

    _print_json(_admin_call(run).model_dump(mode="json"))


def _set_active(user_id: str, *, active: bool, reason: str) -> None:
    from pixwave.accounts import service

    async def run(session: Any, evictions: Any) -> Any:
        return await service.set_active(
            session, evictions, user_id=user_id, active=active, by_user_id="cli", reason=reason
        )

    _print_json(_admin_call(run).model_dump(mode="json"))


@admin_app.command("deactivate-user")
def deactivate_user(
    user_id: Annotated[str, typer.Argument(help="The user (usr_…).")],
    reason: Annotated[str, typer.Option(help="Why, for the operators' log.")] = "",
) -> None:
    """Deactivate a user: none of their tokens works any more (at once everywhere); their
    money stays where it is."""
    _set_active(user_id, active=False, reason=reason)


@admin_app.command("reactivate-user")
def reactivate_user(
    user_id: Annotated[str, typer.Argument(help="The user (usr_…).")],
    reason: Annotated[str, typer.Option(help="Why, for the operators' log.")] = "",
) -> None:
    """Reactivate a deactivated user: their tokens that were not revoked work again."""
    _set_active(user_id, active=True, reason=reason)


# --- audit -----------------------------------------------------------------------------------


@app.command()
def audit(
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Check the whole ledger balances; exit 1 with a report when anything is off."""
    _log_to_stderr()
    from pixwave.ledger.audit import run_audit

    report = asyncio.run(_with_session(run_audit))
    if as_json:
        _print_json(
            {
                "ok": report.ok,
                "accounts": report.accounts,
                "entries": report.entries,
                "ledger_transactions": report.ledger_transactions,
                "checks": report.checks,
                "problems": report.problems,
            }
        )
    else:
        table = Table(title="PixWave ledger audit")
        table.add_column("check")
        table.add_column("result")
        for check, bad in report.checks.items():
            table.add_row(check, "[green]ok[/]" if bad == 0 else f"[red]{bad} problem(s)[/]")
        Console().print(table)
        Console().print(
            f"{report.accounts} accounts, {report.ledger_transactions} ledger transactions, "
            f"{report.entries} entries"
        )
        for problem in report.problems:
            Console().print(f"[red]✗[/] {problem}")
    if not report.ok:
        raise typer.Exit(1)


# --- pix -------------------------------------------------------------------------------------


@pix_app.command("decode")
def pix_decode(brcode: Annotated[str, typer.Argument(help="The Pix copia e cola text.")]) -> None:
    """Parse a BR Code and print its fields as JSON (exit 1 if it is invalid)."""
    from pixwave.pix import PixFormatError, brcode_to_dict, parse_brcode

    try:
        parsed = parse_brcode(brcode)
    except PixFormatError as exc:
        _print_json({"valid": False, "code": exc.code, "error": str(exc)})
        raise typer.Exit(1) from exc
    _print_json({"valid": True, **brcode_to_dict(parsed)})


@pix_app.command("encode")
def pix_encode(
    name: Annotated[str, typer.Option(help="Receiver name (≤25, accents are stripped).")],
    city: Annotated[str, typer.Option(help="Receiver city (≤15).")],
    key: Annotated[str | None, typer.Option(help="Pix key: a static code.")] = None,
    url: Annotated[
        str | None, typer.Option(help="Location URL without scheme: a dynamic code.")
    ] = None,
    amount: Annotated[
        int | None, typer.Option(help="Amount in centavos (omit: payer types it).")
    ] = None,
    txid: Annotated[str, typer.Option(help="Reference label (static codes), ≤25.")] = "***",
    description: Annotated[str | None, typer.Option(help="Message for the payer.")] = None,
    qr: Annotated[Path | None, typer.Option(help="Also write the QR code PNG here.")] = None,
) -> None:
    """Build a BR Code and print it with its parsed fields as JSON."""
    from pixwave.pix import (
        PixFormatError,
        brcode_to_dict,
        build_dynamic_brcode,
        build_static_brcode,
        parse_brcode,
        render_qr_png,
    )

    if (key is None) == (url is None):
        console.print("[red]pass exactly one of --key (static) or --url (dynamic)[/]")
        raise typer.Exit(2)
    try:
        if key is not None:
            code = build_static_brcode(
                key=key,
                merchant_name=name,
                merchant_city=city,
                amount_centavos=amount,
                txid=txid,
                description=description,
            )
        else:
            assert url is not None
            code = build_dynamic_brcode(
                location_url=url, merchant_name=name, merchant_city=city, amount_centavos=amount
            )
    except PixFormatError as exc:
        _print_json({"valid": False, "code": exc.code, "error": str(exc)})
        raise typer.Exit(1) from exc
    if qr is not None:
        qr.write_bytes(render_qr_png(code))
    _print_json({"brcode": code, **brcode_to_dict(parse_brcode(code))})


def main() -> None:
    app()


if __name__ == "__main__":
    main()
