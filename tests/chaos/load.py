"""An open-loop mixed load that behaves like a careful client, recording everything it does.

Operations start at a fixed rate whatever the answers (open loop: a slow or failing system
shows as latency and errors, not as a lower rate). Each operation retries with its
`Idempotency-Key` on a transport error, a 5xx, a 429 or `idempotency_key_in_use`, then
follows its transaction (polling `GET /v1/transactions/{id}`) to a final status, the way an
integrator would; deposits are paid at the simulator that issued their charge.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from pixwave.pix import generate_cpf
from tests.chaos.history import Exchange, History, Kind, Op

#: Statuses after which the client stops looking (awaiting_payment: for an unpaid deposit).
FINAL = frozenset({"succeeded", "failed", "expired", "cancelled", "refunded", "partially_refunded"})
IN_FLIGHT = frozenset({"pending", "processing", "needs_review"})
PIX_KEYS = ("pix@bcb.gov.br", "+5511987654321", "d4f9b1c2-6a3e-4f70-8b21-5c9d0e7a1f33")
#: Answers worth retrying with the same key; any other answer is the system's decision.
RETRYABLE = frozenset({408, 425, 429, 500, 502, 503, 504})
#: Requests in flight at once, per client (see `Load.__post_init__`).
IN_FLIGHT_REQUESTS = 64


@dataclass(frozen=True)
class Wallet:
    user_id: str
    wallet_id: str
    token: str


@dataclass
class Mix:
    """Shares of each operation kind (refunds fall back to deposits when none is possible)."""

    deposit: float = 0.35
    withdrawal: float = 0.25
    transfer: float = 0.2
    refund: float = 0.2
    pay_share: float = 0.85  # deposits the payer pays

    def pick(self, rng: random.Random) -> Kind:
        kinds: list[Kind] = ["deposit", "withdrawal", "transfer", "refund"]
        weights = [self.deposit, self.withdrawal, self.transfer, self.refund]
        return rng.choices(kinds, weights)[0]


@dataclass
class Refundable:
    deposit_id: str
    wallet: Wallet
    remaining: int
    refunds: int = 0


@dataclass
class Load:
    api_url: str
    sims: dict[str, str]
    admin_token: str
    history: History
    seed: int = 7
    mix: Mix = field(default_factory=Mix)
    poll_every: float = 1.0
    retry_for: float = 45.0  # seconds an operation keeps retrying before it gives up
    wallets: list[Wallet] = field(default_factory=list)
    refundable: list[Refundable] = field(default_factory=list)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    following: bool = True  # cleared at the end of the sweep window: stop polling

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        # At most IN_FLIGHT requests at once, each with a connection of its own: httpcore
        # matches every queued request against every connection on each event, so a pool with
        # a queue (the API stalled for a few seconds, the open loop kept adding) turns
        # quadratic and the generator, not the system, stops. Requests wait in a semaphore
        # instead; an operation's latency still counts from its scheduled start.
        self.gate = asyncio.Semaphore(IN_FLIGHT_REQUESTS)
        self.http = httpx.AsyncClient(
            base_url=self.api_url,
            timeout=httpx.Timeout(10.0, connect=3.0),
            limits=httpx.Limits(
                max_connections=IN_FLIGHT_REQUESTS, max_keepalive_connections=IN_FLIGHT_REQUESTS
            ),
        )
        self.sim_http = httpx.AsyncClient(
            timeout=10.0,
            limits=httpx.Limits(
                max_connections=IN_FLIGHT_REQUESTS, max_keepalive_connections=IN_FLIGHT_REQUESTS
            ),
        )

    async def aclose(self) -> None:
        await self.http.aclose()
        await self.sim_http.aclose()

    # --- HTTP with a record -----------------------------------------------------------------
    async def exchange(
        self, op: int, client: httpx.AsyncClient, method: str, url: str, **kwargs: Any
    ) -> httpx.Response | None:
        started = time.time()
        try:
            async with self.gate:
                response = await client.request(method, url, **kwargs)
        except httpx.HTTPError as exc:
            self.history.exchanges.append(
                Exchange(op, method, url, started, time.time(), None, type(exc).__name__)
            )
            return None
        self.history.exchanges.append(
            Exchange(op, method, url, started, time.time(), response.status_code)
        )
        return response

    async def submit(self, op: Op, path: str, body: dict[str, Any], token: str) -> Any:
        """POST until the system decides (2xx or a final 4xx) or `retry_for` runs out."""
        headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": op.key}
        deadline = time.monotonic() + self.retry_for
        delay = 0.2
        while True:
            op.attempts += 1
            response = await self.exchange(op.seq, self.http, "POST", path, json=body,
                                           headers=headers)  # fmt: skip
            if response is not None and not _retryable(response):
                op.acked_at, op.status_code = time.time(), response.status_code
                answer = _json(response)
                if response.status_code >= 400:
                    op.problem = str(answer.get("code") or answer.get("title") or "")
                    return None
                op.transaction_id = answer.get("id")
                op.last_status = answer.get("status")
                return answer
            if time.monotonic() > deadline:
                return None
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)

    async def follow(self, op: Op, token: str, until: frozenset[str]) -> str | None:
        """Poll the transaction until its status is in ``until`` (or the sweep window ends)."""
        headers = {"Authorization": f"Bearer {token}"}
        while self.following and op.transaction_id is not None:
            response = await self.exchange(
                op.seq, self.http, "GET", f"/v1/transactions/{op.transaction_id}", headers=headers
            )
            if response is not None and response.status_code == 200:
                status = str(response.json()["status"])
                op.last_status = status
                if status in until:
                    return status
            await asyncio.sleep(self.poll_every)
        return None

    # --- setup --------------------------------------------------------------------------------
    async def create_wallets(self, count: int, funding: int) -> None:
        admin = {"Authorization": f"Bearer {self.admin_token}"}
        for n in range(count):
            tag = f"{self.seed}-{n}-{time.time_ns()}"
            user = await self._admin_post(
                "/v1/users",
                {"name": f"Chaos {n}", "email": f"chaos{tag}@example.com",
                 "document": generate_cpf(random.Random(tag))},
                admin, f"user-{tag}",
            )  # fmt: skip
            token = await self._admin_post(
                f"/v1/users/{user['id']}/tokens", {}, admin, f"token-{tag}"
            )
            wallet = Wallet(user["id"], user["wallet_id"], token["token"])
            self.wallets.append(wallet)
            op = self.new_op("funding", wallet, funding)
            await self.submit(
                op,
                "/v1/admin/adjustments",
                {"wallet_id": wallet.wallet_id, "direction": "credit", "amount": funding,
                 "reason": "chaos funding"},
                self.admin_token,
            )  # fmt: skip
            if not op.accepted:
                raise RuntimeError(f"funding a wallet failed: {op.status_code} {op.problem}")

    async def _admin_post(
        self, path: str, body: dict[str, Any], headers: dict[str, str], key: str
    ) -> dict[str, Any]:
        response = await self.http.post(
            path, json=body, headers={**headers, "Idempotency-Key": key}
        )
        response.raise_for_status()
        answer: dict[str, Any] = response.json()
        return answer

    def new_op(self, kind: Kind, wallet: Wallet, amount: int | None, **extra: Any) -> Op:
        op = Op(
            seq=len(self.history.ops) + 1, kind=kind, wallet_id=wallet.wallet_id, amount=amount,
            key=f"chaos-{self.seed}-{len(self.history.ops) + 1}-{time.time_ns()}",
            started=time.time(), **extra,
        )  # fmt: skip
        self.history.ops.append(op)
        return op

    # --- the operations -----------------------------------------------------------------------
    async def deposit(self, wallet: Wallet) -> None:
        op = self.new_op("deposit", wallet, self.rng.randint(1_00, 300_00))
        pay = self.rng.random() < self.mix.pay_share
        answer = await self.submit(op, "/v1/deposits", {"amount": op.amount}, wallet.token)
        if answer is None:
            return
        status = await self.follow(op, wallet.token, FINAL | {"awaiting_payment"})
        if status != "awaiting_payment":
            op.terminal_at = time.time() if status is not None else None
            return
        if not pay:
            op.terminal_at = time.time()
            return
        headers = {"Authorization": f"Bearer {wallet.token}"}
        ready = await self.exchange(
            op.seq, self.http, "GET", f"/v1/transactions/{op.transaction_id}", headers=headers
        )
        if ready is None or ready.status_code != 200:
            op.terminal_at = time.time()  # left unpaid: an awaiting charge is a final answer
            return
        charge = ready.json()
        await self.pay(op, str(charge["gateway"]), str(charge["brcode"]))
        status = await self.follow(op, wallet.token, FINAL)
        if status is not None:
            op.terminal_at = time.time()
        if status == "succeeded":
            self.refundable.append(Refundable(op.transaction_id or "", wallet, op.amount or 0))

    async def pay(self, op: Op, gateway: str, brcode: str) -> None:
        """The payer's bank pays the BR Code (retried while the simulator is unreachable)."""
        deadline = time.monotonic() + self.retry_for
        while time.monotonic() < deadline:
            response = await self.exchange(
                op.seq, self.sim_http, "POST", f"{self.sims[gateway]}/_sandbox/pay",
                json={"brcode": brcode},
            )  # fmt: skip
            if response is not None and response.status_code in (200, 409):
                op.paid = True  # 409: an earlier try went through and its answer was lost
                op.paid_gateway = gateway
                return
            await asyncio.sleep(0.5)

    async def withdrawal(self, wallet: Wallet) -> None:
        op = self.new_op("withdrawal", wallet, self.rng.randint(1_00, 80_00),
                         pix_key=self.rng.choice(PIX_KEYS))  # fmt: skip
        body = {"amount": op.amount, "pix_key": op.pix_key}
        if await self.submit(op, "/v1/withdrawals", body, wallet.token) is None:
            return
        if await self.follow(op, wallet.token, FINAL) is not None:
            op.terminal_at = time.time()

    async def transfer(self, wallet: Wallet) -> None:
        to = self.rng.choice([w for w in self.wallets if w is not wallet])
        op = self.new_op("transfer", wallet, self.rng.randint(1_00, 50_00),
                         to_wallet_id=to.wallet_id)  # fmt: skip
        body = {"to_wallet_id": to.wallet_id, "amount": op.amount}
        if await self.submit(op, "/v1/transfers", body, wallet.token) is None:
            return
        if op.last_status in FINAL or await self.follow(op, wallet.token, FINAL) is not None:
            op.terminal_at = time.time()

    async def refund(self) -> None:
        if not self.refundable:
            await self.deposit(self.rng.choice(self.wallets))
            return
        target = self.refundable.pop(self.rng.randrange(len(self.refundable)))
        partial = target.refunds == 0 and target.remaining > 1 and self.rng.random() < 0.6
        amount = self.rng.randint(1, target.remaining - 1) if partial else None
        op = self.new_op("refund", target.wallet, amount, parent_id=target.deposit_id)
        body = {} if amount is None else {"amount": amount}
        path = f"/v1/transactions/{target.deposit_id}/refunds"
        if await self.submit(op, path, body, target.wallet.token) is None:
            return
        status = await self.follow(op, target.wallet.token, FINAL)
        if status is not None:
            op.terminal_at = time.time()
        if status == "succeeded" and amount is not None:
            target.remaining -= amount
            target.refunds += 1
            self.refundable.append(target)
        elif status == "failed":
            self.refundable.append(target)

    # --- the open loop ------------------------------------------------------------------------
    def spawn(self, work: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(work)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def one(self) -> Callable[[], Awaitable[None]]:
        kind = self.mix.pick(self.rng)
        wallet = self.rng.choice(self.wallets)
        if kind == "deposit":
            return lambda: self.deposit(wallet)
        if kind == "withdrawal":
            return lambda: self.withdrawal(wallet)
        if kind == "transfer":
            return lambda: self.transfer(wallet)
        return self.refund

    async def run(self, rate: float, seconds: float) -> None:
        """Start ``rate`` operations a second for ``seconds`` (not waiting for them)."""
        began = time.monotonic()
        for n in range(int(rate * seconds)):
            delay = began + n / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            self.spawn(self.one()())

    async def settle(self, seconds: float) -> None:
        """Wait for every operation to finish following its transaction, at most ``seconds``
        (the sweep window); whatever is still running then is stopped."""
        if self.tasks:
            await asyncio.wait(set(self.tasks), timeout=seconds)
        self.following = False
        for task in list(self.tasks):
            task.cancel()
        for task in list(self.tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def resolve(self) -> None:
        """Ask again, with the same keys, for every operation that never got an answer: a
        client does this once the system is back, and the answer settles what happened."""
        self.following = True
        self.retry_for = 20.0
        tokens = {w.wallet_id: w.token for w in self.wallets}
        pending = [op for op in self.history.ops if not op.acked and op.kind != "funding"]
        for op in pending:
            token = tokens[op.wallet_id]
            if op.kind == "deposit":
                await self.submit(op, "/v1/deposits", {"amount": op.amount}, token)
            elif op.kind == "withdrawal":
                body = {"amount": op.amount, "pix_key": op.pix_key}
                await self.submit(op, "/v1/withdrawals", body, token)
            elif op.kind == "transfer":
                body = {"to_wallet_id": op.to_wallet_id, "amount": op.amount}
                await self.submit(op, "/v1/transfers", body, token)
            elif op.kind == "refund":
                body = {} if op.amount is None else {"amount": op.amount}
                await self.submit(op, f"/v1/transactions/{op.parent_id}/refunds", body, token)


def _retryable(response: httpx.Response) -> bool:
    if response.status_code in RETRYABLE:
        return True
    return response.status_code == 409 and "idempotency_key_in_use" in response.text


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
