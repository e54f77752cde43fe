"""`pixwave sandbox …`: run a simulator, and drive a running one (faults, payer, sends).

The driving commands talk to a simulator's admin routes over HTTP, so they work the same for
a standalone simulator (`--url http://127.0.0.1:9001`) and for one mounted in the embedded
API (`--url http://127.0.0.1:8000/sandbox/<gateway>`). `pixwave sandbox <family>` runs one
simulator per registered gateway family (``gateways/specs.py``), with the options its spec
declares.
"""

from __future__ import annotations

import inspect
import json
import sys
from collections.abc import Callable
from typing import Annotated, Any

import httpx
import typer
import uvloop
from rich.console import Console

from pixwave.gateways.spec import GATEWAY_NAME, GatewaySpec
from pixwave.gateways.specs import SPECS

sandbox_app = typer.Typer(
    help="Gateway simulators: run one, inject faults, pay charges, settle sends.",
    no_args_is_help=True,
)
console = Console(stderr=True)

UrlOption = Annotated[
    str,
    typer.Option(
        "--url",
        help="The simulator's base URL, e.g. http://127.0.0.1:9001 or "
        "http://127.0.0.1:8000/sandbox/<gateway> (embedded).",
    ),
]


def _run(
    spec: GatewaySpec[Any],
    host: str,
    port: int,
    webhook_url: str | None,
    time_scale: float,
    log_level: str,
    extra: dict[str, Any],
) -> None:
    from pixwave.config import get_settings
    from pixwave.kit.runtime import tune_gc
    from pixwave.observability.logging import configure_logging
    from pixwave.sandbox.server import serve

    configure_logging(log_level, json=not sys.stderr.isatty(), role="sandbox")

    simulator = spec.simulator(
        public_url=f"http://{host}:{port}", webhook_url=webhook_url, time_scale=time_scale, **extra
    )
    # Like the API's workers (ADR 11): the simulator keeps every payment in memory, and full
    # collections over that growing heap would dominate its CPU under load.
    tune_gc(get_settings().python_gc_threshold)
    console.print(
        f"[bold green]{spec.family} sandbox[/] on http://{host}:{port} "
        f"(admin: http://{host}:{port}/_sandbox, docs: /_sandbox/docs)"
    )
    uvloop.run(serve(simulator, host=host, port=port, log_level=log_level))


HostOption = Annotated[str, typer.Option(help="Interface to listen on.")]
WebhookOption = Annotated[
    str | None, typer.Option(help="Where notifications go when a resource names none.")
]
ScaleOption = Annotated[
    float, typer.Option(help="Multiplies webhook retry waits and settle delays (0.001 = fast).")
]
LogOption = Annotated[str, typer.Option(help="uvicorn log level.")]


def run_command(spec: GatewaySpec[Any]) -> Callable[..., None]:
    """``pixwave sandbox <family>``: the common options, plus one ``--<flag>/--no-<flag>``
    per entry of the spec's ``sandbox_flags``."""

    def command(
        port: int,
        host: str,
        webhook_url: str | None,
        time_scale: float,
        log_level: str,
        **flags: bool,
    ) -> None:
        extra = {spec.sandbox_flags[name].field: value for name, value in flags.items()}
        _run(spec, host, port, webhook_url, time_scale, log_level, extra)

    keyword = inspect.Parameter.KEYWORD_ONLY
    parameters = [
        inspect.Parameter(
            "port",
            keyword,
            default=spec.sandbox_port,
            annotation=Annotated[int, typer.Option(help="Port to listen on.")],
        ),
        inspect.Parameter("host", keyword, default="127.0.0.1", annotation=HostOption),
        inspect.Parameter("webhook_url", keyword, default=None, annotation=WebhookOption),
        inspect.Parameter("time_scale", keyword, default=1.0, annotation=ScaleOption),
        *(
            inspect.Parameter(
                name,
                keyword,
                default=flag.default,
                annotation=Annotated[bool, typer.Option(help=flag.help)],
            )
            for name, flag in spec.sandbox_flags.items()
        ),
        inspect.Parameter("log_level", keyword, default="info", annotation=LogOption),
    ]
    # typer reads a command's options from its signature and annotations.
    command.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in parameters} | {"return": None}
    summary = f" ({spec.sandbox_summary})" if spec.sandbox_summary else ""
    command.__doc__ = f"Run the {spec.title} simulator{summary}."
    return command


for _spec in SPECS:
    sandbox_app.command(_spec.family)(run_command(_spec))


TokenOption = Annotated[
    str | None,
    typer.Option(
        "--token",
        envvar="PIXWAVE_TOKEN",
        help="An admin token of the API: simulators mounted in it (…/sandbox/<name>) answer "
        "only that. It is sent to those URLs only; standalone simulators need none.",
    ),
]

#: The admin token for this invocation (set by the group callback below).
_token: str | None = None


@sandbox_app.callback()
def _sandbox(token: TokenOption = None) -> None:
    """Gateway simulators: run one, inject faults, pay charges, settle sends."""
    global _token
    _token = token


def _mounted(url: str) -> bool:
    """A simulator mounted in the API (``…/sandbox/<name>``), the only kind that takes a token:
    an admin token is never handed to a standalone simulator, whoever runs it."""
    *_, parent, name = ("/" + httpx.URL(url).path.strip("/")).split("/")
    return parent == "sandbox" and GATEWAY_NAME.match(name) is not None


def _call(method: str, url: str, path: str, body: Any = None, *, show: bool = True) -> Any:
    """One admin request; an unreachable simulator or an error answer is a clean exit.

    Its answer is the command's output on stdout, so any log line goes to stderr."""
    from pixwave.config import get_settings
    from pixwave.observability.logging import configure_logging

    configure_logging(get_settings().log_level, json=False, to_stderr=True)
    headers = {"Authorization": f"Bearer {_token}"} if _token and _mounted(url) else {}
    try:
        response = httpx.request(
            method, url.rstrip("/") + path, json=body, headers=headers, timeout=10
        )
    except httpx.HTTPError as exc:
        console.print(f"[red]cannot reach {url}: {exc}[/]")
        raise typer.Exit(2) from None
    if response.is_error:
        console.print(f"[red]{response.status_code}[/] {response.text}")
        raise typer.Exit(1)
    data = response.json() if response.content else {}
    if show:
        sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    return data


@sandbox_app.command("status")
def status(url: UrlOption) -> None:
    """Show a simulator's configuration, resource counts and faults."""
    _call("GET", url, "/_sandbox")


@sandbox_app.command("fault")
def fault(
    url: UrlOption,
    operation: Annotated[
        str, typer.Option(help="Operation (see `status`), or '*' for every operation.")
    ] = "*",
    error_rate: Annotated[float, typer.Option(help="Share of requests answered 5xx.")] = 0.0,
    error_status: Annotated[int, typer.Option(help="The 5xx status to answer.")] = 500,
    latency_ms: Annotated[float | None, typer.Option(help="Fixed added latency.")] = None,
    latency_min_ms: Annotated[float | None, typer.Option(help="Uniform latency, low end.")] = None,
    latency_max_ms: Annotated[float | None, typer.Option(help="Uniform latency, high end.")] = None,
    outage: Annotated[
        str | None, typer.Option(help="'503' (answers 503) or 'refuse' (closes the port).")
    ] = None,
    outage_seconds: Annotated[
        float | None, typer.Option(help="The outage ends by itself after this long.")
    ] = None,
    rate_limit: Annotated[int | None, typer.Option(help="Requests per second before 429.")] = None,
    retry_after: Annotated[int, typer.Option(help="Seconds sent in Retry-After.")] = 1,
    timeout_rate: Annotated[
        float, typer.Option(help="Share of requests processed and never answered.")
    ] = 0.0,
    hang_seconds: Annotated[float, typer.Option(help="How long those hang.")] = 30.0,
    seed: Annotated[int | None, typer.Option(help="Seed for replayable randomness.")] = None,
    clear: Annotated[bool, typer.Option(help="Remove this operation's rule instead.")] = False,
) -> None:
    """Set (or --clear) the fault rule of one operation of a running simulator."""
    if clear:
        _call("DELETE", url, f"/_sandbox/faults/{operation}")
        return
    rule: dict[str, Any] = {
        "error_rate": error_rate,
        "error_status": error_status,
        "retry_after": retry_after,
        "timeout_rate": timeout_rate,
        "hang_seconds": hang_seconds,
    }
    if latency_ms is not None:
        rule["latency"] = {"fixed_ms": latency_ms}
    elif latency_min_ms is not None or latency_max_ms is not None:
        rule["latency"] = {"min_ms": latency_min_ms, "max_ms": latency_max_ms}
    if outage is not None:
        rule["outage"] = outage
        rule["outage_seconds"] = outage_seconds
    if rate_limit is not None:
        rule["rate_limit"] = rate_limit
    if seed is not None:
        current = _call("GET", url, "/_sandbox/faults", show=False)
        rules = {**current["config"].get("rules", {}), operation: rule}
        _call("PUT", url, "/_sandbox/faults", {"seed": seed, "rules": rules})
        return
    _call("PUT", url, f"/_sandbox/faults/{operation}", rule)


@sandbox_app.command("clear")
def clear_faults(url: UrlOption) -> None:
    """Remove every fault rule of a running simulator."""
    _call("DELETE", url, "/_sandbox/faults")


@sandbox_app.command("pay")
def pay(
    url: UrlOption,
    brcode: Annotated[str, typer.Argument(help="The charge's Pix copia e cola text.")],
) -> None:
    """Pay a charge by its BR Code, as the payer's bank app would."""
    _call("POST", url, "/_sandbox/pay", {"brcode": brcode})


@sandbox_app.command("settle")
def settle(
    url: UrlOption,
    send_id: Annotated[str, typer.Argument(help="The send's id at the provider.")],
    reject: Annotated[str | None, typer.Option(help="Reject with this reason instead.")] = None,
) -> None:
    """Settle (or --reject) a pending send."""
    if reject is not None:
        _call("POST", url, f"/_sandbox/sends/{send_id}/reject", {"reason": reject})
    else:
        _call("POST", url, f"/_sandbox/sends/{send_id}/settle", {})


@sandbox_app.command("advance")
def advance(
    url: UrlOption,
    seconds: Annotated[float, typer.Argument(help="How far to move simulated time.")],
) -> None:
    """Move a simulator's clock forward (charges expire)."""
    _call("POST", url, "/_sandbox/clock/advance", {"seconds": seconds})
