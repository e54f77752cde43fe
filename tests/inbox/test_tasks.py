"""Matching a notification to its payment."""

from __future__ import annotations

import pytest

from pixwave.inbox.tasks import transaction_id_from_reference


class TestReferenceMapping:
    @pytest.mark.parametrize(
        ("reference", "expected"),
        [
            ("txn01JD3Q2ZV8K9M4N6P7R8S9T0VW", "txn_01JD3Q2ZV8K9M4N6P7R8S9T0VW"),
            ("txn_01JD3Q2ZV8K9M4N6P7R8S9T0VW", None),
            ("191606489519", None),
            ("E09089356202611260000abcdefghij", None),
        ],
    )
    def test_efi_ids_lead_back_to_the_transaction(
        self, reference: str, expected: str | None
    ) -> None:
        """idEnvio / devolução ids we derived from `txn_…` map back; anything else does not."""
        assert transaction_id_from_reference(reference) == expected
