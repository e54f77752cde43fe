"""Personal data and secrets never reach a log line, whoever logs them and in any format."""

from __future__ import annotations

import logging
import random

import pytest
import structlog

from pixwave.accounts.service import TOKEN_PREFIX
from pixwave.config import Settings
from pixwave.observability.logging import configure_logging
from pixwave.observability.masking import API_TOKEN_PREFIX, mask_text, mask_value
from pixwave.pix.documents import generate_cnpj, generate_cpf

PEM = (
    "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7\n"
    "-----END PRIVATE KEY-----"
)
CPF = "529.982.247-25"
CNPJ = "11.222.333/0001-81"
SECRETS = {
    "cpf_bare": "52998224725",
    "cnpj_bare": "11222333000181",
    "cnpj_alnum": "12ABC34501DE35",
    "email": "maria.souza@example.com",
    "phone": "+5511998765432",
    "phone_printed": "+55 (11) 99876-5432",
    "evp": "123e4567-e89b-42d3-a456-426614174000",
    "name": "Maria Souza",
    "api_token": f"{API_TOKEN_PREFIX}Zx9Kq2LmN4pR7sT1vW3yA5bC",
    "bearer": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl",
    "whsec": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    "hmac": "hm4c-S3cr3t-value",
    "password": "correct horse battery",
    "client_secret": "Client_Secret_abc123",
    "pem_body": "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7",
    "mp_token": "APP_USR-1234567890123456-010203-abcdef0123456789abcdef0123456789-123456789",
}
KEEP = ("txn_01JC7Z8X9Y0ABCDEFGHJKMNPQR", "usr_01JC7Z8X9Y0ABCDEFGHJKMNPQS")


def _log_every_kind() -> None:
    """The same data through our logger (by key and in free text) and a library's."""
    s = SECRETS
    log = structlog.get_logger("pixwave.payments")
    structlog.contextvars.bind_contextvars(transaction_id=KEEP[0])
    log.info(
        "payments.withdrawal_sent",
        user_id=KEEP[1],
        amount=123_45,
        pix_key=s["evp"],
        document=CPF,
        payer_name=s["name"],
        holder_name=s["name"],
        receiver={"nome": s["name"], "cnpj": CNPJ, "email": s["email"]},
        headers={"Authorization": f"Bearer {s['bearer']}", "X-Other": "ok"},
        password=s["password"],
        client_secret=s["client_secret"],
        certificate=PEM,
        webhook={"url": f"https://h.example/efi?hmac={s['hmac']}", "secret": s["whsec"]},
        keys=[s["phone"], s["phone_printed"], s["cnpj_alnum"]],
        mercadopago_access_token=s["mp_token"],
    )
    log.warning(
        "payments.failed",
        message=f"payer {s['cpf_bare']} / {s['cnpj_bare']} with key {s['email']} refused",
        error=f"HTTPStatusError('401 for token {s['api_token']} and {s['whsec']}')",
    )
    try:
        raise RuntimeError(f"duplicate entry {CPF} for key {s['evp']}")
    except RuntimeError:
        log.exception("api.unhandled_error")
    logging.getLogger("sqlalchemy.engine").warning(
        "parameters (%r, %r, %r)", CPF, s["email"], s["phone"]
    )
    logging.getLogger("httpx").error("Authorization: Bearer %s\n%s", s["bearer"], PEM)


def _leaks(text: str) -> list[str]:
    raw = [*SECRETS.values(), CPF, CNPJ]
    return [value for value in raw if value in text]


@pytest.mark.parametrize("as_json", [True, False], ids=["json", "console"])
def test_nothing_personal_or_secret_reaches_the_output(
    capsys: pytest.CaptureFixture[str], as_json: bool
) -> None:
    """Every kind, by key and by value, through structlog and stdlib: none of it is printed,
    while our ids and amounts are."""
    configure_logging("info", json=as_json, settings=Settings(_env_file=None))
    _log_every_kind()
    out = capsys.readouterr().out
    assert "payments.withdrawal_sent" in out
    assert "parameters" in out
    assert _leaks(out) == []
    assert all(identifier in out for identifier in KEEP)
    assert "12345" in out  # the amount, in centavos
    for mark in ("[cpf]", "[cnpj]", "[email]", "[phone]", "[evp]", "[token]", "[pem]", "[name]"):
        assert mark in out, mark


class TestByValue:
    @pytest.mark.parametrize(
        ("text", "mask"),
        [
            (f"payer {CPF} paid", "payer [cpf] paid"),
            ("cpf=52998224725;", "cpf=[cpf];"),
            (f"cnpj {CNPJ}", "cnpj [cnpj]"),
            ("12.ABC.345/01DE-35", "[cnpj]"),
            ("key 12ABC34501DE35", "key [cnpj]"),
            ("to ana@example.com.br now", "to [email] now"),
            ("+5511998765432", "[phone]"),
            ("call +55 (11) 99876-5432", "call [phone]"),
            ("evp 123E4567-E89B-42D3-A456-426614174000", "evp [evp]"),
            ("Authorization: Bearer abc.def", "Authorization: Bearer [token]"),
            (f"{TOKEN_PREFIX}abcDEF123", "[token]"),
            ("https://x.example/w?hmac=abc&y=1", "https://x.example/w?hmac=[redacted]&y=1"),
            (f"cert {PEM} end", "cert [pem] end"),
        ],
    )
    def test_found_in_free_text(self, text: str, mask: str) -> None:
        assert mask_text(text) == mask

    @pytest.mark.parametrize(
        "text",
        [
            "txn_01JC7Z8X9Y0ABCDEFGHJKMNPQR",
            "att_12345678901234567890123456",
            "payments.withdrawal_sent",
            "latency 1234 ms",
            "ABCDEFGHJKMNPQ",  # 14 characters, not a valid CNPJ
            "v1.2.3",
        ],
    )
    def test_ids_and_plain_text_survive(self, text: str) -> None:
        assert mask_text(text) == text

    def test_generated_documents_are_all_masked(self) -> None:
        """Any valid CPF or CNPJ, bare or alphanumeric, whatever its digits."""
        rng = random.Random(7)
        for _ in range(200):
            cpf, cnpj = generate_cpf(rng), generate_cnpj(rng, alphanumeric=True)
            assert cpf not in mask_text(f"doc {cpf}.")
            assert cnpj not in mask_text(f"doc {cnpj}.")


class TestByKey:
    def test_secrets_and_names_go_whole_whatever_they_look_like(self) -> None:
        masked = mask_value(
            {
                "Authorization": "anything",
                "efi_webhook_hmac": "x",
                "client-secret": "y",
                "nome": "Ana",
                "receiver_name": "Bia",
                "nested": [{"password": "p"}, {"holder_name": "Caio"}],
            }
        )
        assert masked == {
            "Authorization": "[redacted]",
            "efi_webhook_hmac": "[redacted]",
            "client-secret": "[redacted]",
            "nome": "[name]",
            "receiver_name": "[name]",
            "nested": [{"password": "[redacted]"}, {"holder_name": "[name]"}],
        }

    def test_a_uuid_request_id_is_not_taken_for_a_pix_key(self) -> None:
        request_id = "123e4567-e89b-42d3-a456-426614174000"
        assert mask_value(request_id, "request_id") == request_id
        assert mask_value(request_id, "note") == "[evp]"

    def test_the_callers_dict_is_left_as_it_was(self) -> None:
        """One event dict goes to stdout and Logstash; a logged object must not change."""
        payload = {"payer": {"name": "Ana"}}
        mask_value(payload)
        assert payload == {"payer": {"name": "Ana"}}

    def test_numbers_are_never_masked(self) -> None:
        assert mask_value(52998224725, "amount") == 52998224725

    def test_the_token_prefix_is_the_accounts_one(self) -> None:
        assert API_TOKEN_PREFIX == TOKEN_PREFIX
