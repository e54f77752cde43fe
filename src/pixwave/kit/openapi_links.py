"""OpenAPI links: which response's field feeds which operation's parameter.

A link tells a client (and a stateful fuzzer) that the `id` of the user `POST /v1/users`
created is the `user_id` of `POST /v1/users/{user_id}/tokens`, that a deposit's `id` is the
`transaction_id` to read it or refund it, and so on. They are one table, :data:`LINKS`,
applied when the document is built (:func:`add_links`, called by `add_problem_schemas`).

A row whose source or target operation the app does not serve is left out, so the table can
name operations that come and go (a route mounted only in some configurations) without
breaking the document.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

#: `(METHOD, path template)` as the document spells it.
Operation = tuple[str, str]


@dataclass(frozen=True, slots=True)
class Link:
    """`source`'s `statuses` responses feed `target`: each parameter from a runtime expression
    (`$response.body#/id`, `$request.path.user_id`)."""

    name: str
    source: Operation
    statuses: tuple[str, ...]
    target: Operation
    parameters: dict[str, str] = field(default_factory=dict)
    description: str = ""


_USER = ("POST", "/v1/users")
_DEPOSIT = ("POST", "/v1/deposits")
_WITHDRAWAL = ("POST", "/v1/withdrawals")
_REFUND = ("POST", "/v1/transactions/{transaction_id}/refunds")
_TRANSFER = ("POST", "/v1/transfers")
_TOKEN = ("POST", "/v1/users/{user_id}/tokens")
_ENDPOINT = ("POST", "/v1/webhook-endpoints")
_TRANSACTION = ("GET", "/v1/transactions/{transaction_id}")

_NEW_ID: Final = "$response.body#/id"
_PAYMENT: Final = ("200", "202")  # `Prefer: wait` answers 200, otherwise 202


def _user(name: str, target: Operation, description: str) -> Link:
    return Link(name, _USER, ("201",), target, {"user_id": _NEW_ID}, description)


def _endpoint(name: str, target: Operation, description: str) -> Link:
    return Link(name, _ENDPOINT, ("201",), target, {"endpoint_id": _NEW_ID}, description)


LINKS: Final[tuple[Link, ...]] = (
    _user("GetUser", ("GET", "/v1/users/{user_id}"), "The user just created."),
    _user("IssueToken", _TOKEN, "Issue a token to the user just created."),
    _user("ListTokens", ("GET", "/v1/users/{user_id}/tokens"), "The new user's tokens."),
    _user("Deactivate", ("POST", "/v1/users/{user_id}/deactivate"), "Deactivate the new user."),
    *(
        _user(name, (method, path), description)
        for path in ("/v1/users/{user_id}/limits", "/v1/admin/users/{user_id}/limits")
        for name, method, description in (
            ("GetLimits", "GET", "The new user's money limits."),
            ("SetLimits", "PUT", "Set the new user's money limits."),
        )
    ),
    Link(
        "GetWallet",
        _USER,
        ("201",),
        ("GET", "/v1/wallets/{wallet_id}"),
        {"wallet_id": "$response.body#/wallet_id"},
        "The new user's wallet.",
    ),
    Link(
        "Reactivate",
        ("POST", "/v1/users/{user_id}/deactivate"),
        ("200",),
        ("POST", "/v1/users/{user_id}/reactivate"),
        {"user_id": "$request.path.user_id"},
        "Reactivate the user just deactivated.",
    ),
    Link(
        "RevokeToken",
        _TOKEN,
        ("201",),
        ("DELETE", "/v1/users/{user_id}/tokens/{token_id}"),
        {"user_id": "$request.path.user_id", "token_id": _NEW_ID},
        "Revoke the token just issued.",
    ),
    Link("GetDeposit", _DEPOSIT, _PAYMENT, _TRANSACTION, {"transaction_id": _NEW_ID}),
    Link("RefundDeposit", _DEPOSIT, _PAYMENT, _REFUND, {"transaction_id": _NEW_ID}),
    Link("GetWithdrawal", _WITHDRAWAL, _PAYMENT, _TRANSACTION, {"transaction_id": _NEW_ID}),
    Link("GetRefund", _REFUND, _PAYMENT, _TRANSACTION, {"transaction_id": _NEW_ID}),
    Link(
        "RefundAgain",
        _REFUND,
        _PAYMENT,
        _REFUND,
        {"transaction_id": "$request.path.transaction_id"},
        "Refund what remains of the same deposit.",
    ),
    Link("GetTransfer", _TRANSFER, ("201",), _TRANSACTION, {"transaction_id": _NEW_ID}),
    _endpoint("GetEndpoint", ("GET", "/v1/webhook-endpoints/{endpoint_id}"), "The new endpoint."),
    _endpoint(
        "RotateSecret",
        ("POST", "/v1/webhook-endpoints/{endpoint_id}/rotate-secret"),
        "Rotate the new endpoint's secret.",
    ),
    _endpoint(
        "EnableEndpoint",
        ("POST", "/v1/webhook-endpoints/{endpoint_id}/enable"),
        "Enable the new endpoint.",
    ),
    _endpoint(
        "DeleteEndpoint",
        ("DELETE", "/v1/webhook-endpoints/{endpoint_id}"),
        "Delete the new endpoint.",
    ),
)


def apply_links(document: dict[str, Any], links: tuple[Link, ...] = LINKS) -> dict[str, Any]:
    """Add each link whose source response and target operation are in ``document``, by the
    target's `operationId`. Idempotent: applying twice writes the same links."""
    paths: dict[str, Any] = document.get("paths", {})
    for link in links:
        source = paths.get(link.source[1], {}).get(link.source[0].lower())
        target = paths.get(link.target[1], {}).get(link.target[0].lower())
        if source is None or target is None or "operationId" not in target:
            continue
        for status in link.statuses:
            response = source.get("responses", {}).get(status)
            if response is None:
                continue
            entry: dict[str, Any] = {
                "operationId": target["operationId"],
                "parameters": dict(link.parameters),
            }
            if link.description:
                entry["description"] = link.description
            response.setdefault("links", {})[link.name] = entry
    return document
