"""Payments out of wallets decided in a group commit (`kit.groupcommit`): transfers and
withdrawals are judged against the same locked state — their payers' period limits, then the
ledger accounts they move — in memory and in arrival order."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from pixwave.accounts.auth import Principal
from pixwave.ledger import service as ledger
from pixwave.limits.service import GroupLimits, MoneyLimits


@dataclass(frozen=True, slots=True)
class PayerClaim:
    """What one payment of a group touches: its payer (their limits and wallet), the accounts
    it moves besides the payer's (a transfer's payee), and the limits it is judged by (the
    process's)."""

    principal: Principal
    limits: MoneyLimits
    also: tuple[str, ...] = ()


@dataclass(slots=True)
class PayerGroup:
    """The locked state a group of payments is decided against, in memory."""

    limits: GroupLimits
    accounts: ledger.LockedAccounts

    def mark(self) -> tuple[int, int]:
        return self.limits.mark(), self.accounts.mark()

    def rewind(self, to: tuple[int, int]) -> None:
        self.limits.rewind(to[0])
        self.accounts.rewind(to[1])

    def finish(self, session: AsyncSession) -> None:
        self.accounts.finish(session)


async def prepare_payers(session: AsyncSession, claims: Sequence[PayerClaim]) -> PayerGroup:
    """The group commit's `prepare`: the payers a period limit applies to are locked and summed
    first, then every account, each in id order — the order a single payment takes them in."""
    limits = claims[0].limits
    judged = await limits.lock_for_group(session, [claim.principal for claim in claims])
    ids = [account for claim in claims for account in claim.also]
    ids += [claim.principal.wallet_id for claim in claims if claim.principal.wallet_id]
    return PayerGroup(judged, await ledger.lock_accounts(session, ids))
