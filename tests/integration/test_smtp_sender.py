"""The SMTP sender against a real SMTP sink and a real dovecot Sent folder: exactly once."""

from __future__ import annotations

import secrets
from email import message_from_bytes
from email.policy import default
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from app.errors import ToolAuthError, ToolError, ToolUnavailable
from app.settings import ImapAccount
from infra.mail.dovecot import Dovecot, MailUser, free_port, imap_account
from infra.mail.smtp_sink import SmtpSink
from tools.mailbox_smtp import OutgoingMessage, send_message

pytestmark = pytest.mark.integration

BODY = "Thanks for your message — we refunded order 42.\n"


def outgoing(**overrides: object) -> OutgoingMessage:
    fields: dict[str, object] = {
        "message_id": f"<{secrets.token_hex(8)}@mailspine.local>",
        "to": "customer@example.test",
        "subject": "Re: refund",
        "body": BODY,
        "in_reply_to": "<orig-2@example.test>",
        "references": ["<orig-1@example.test>", "<orig-2@example.test>"],
    }
    fields.update(overrides)
    return OutgoingMessage(**fields)  # type: ignore[arg-type]


@pytest.fixture
def sent(dovecot: Dovecot, mail_user: MailUser) -> ImapAccount:
    return imap_account(dovecot, mail_user.name, mail_user.password)


@pytest.fixture
def sink(smtp_sink: SmtpSink) -> SmtpSink:
    smtp_sink.reset()
    return smtp_sink


def sent_copies(dovecot: Dovecot, account: ImapAccount, message_id: str) -> list[bytes]:
    with dovecot.client(account.username, account.password.get_secret_value()) as c:  # type: ignore[union-attr]
        if not c.folder_exists(account.sent_folder):
            return []
        c.select_folder(account.sent_folder, readonly=True)
        uids = c.search(["HEADER", "Message-ID", message_id])
        return [data[b"BODY[]"] for data in c.fetch(uids, ["BODY.PEEK[]"]).values()]


async def test_send_once_with_headers_and_sent_copy(
    sink: SmtpSink, sent: ImapAccount, dovecot: Dovecot
) -> None:
    msg = outgoing()
    result = await send_message(msg, smtp=sink.account(), sent=sent, attempt=1)
    assert result == {"message_id": msg.message_id, "reconciled": False, "sent_copy": True}
    [received] = sink.messages
    assert received.rcpt_tos == ("customer@example.test",)
    assert received.mail_from == "support@mailspine.test"
    assert received.login == sink.username
    parsed = message_from_bytes(received.data, policy=default)
    assert parsed["Message-ID"] == msg.message_id
    assert parsed["From"] == "support@mailspine.test"
    assert parsed["In-Reply-To"] == "<orig-2@example.test>"
    assert parsed["References"] == "<orig-1@example.test> <orig-2@example.test>"
    assert parsed["Auto-Submitted"] == "auto-replied"
    assert parsed.get_content().replace("\r\n", "\n") == BODY
    [copy] = sent_copies(dovecot, sent, msg.message_id)
    assert copy == received.data  # byte for byte what went out


async def test_retry_after_crash_is_reconciled(sink: SmtpSink, sent: ImapAccount, dovecot: Dovecot) -> None:
    msg = outgoing()
    await send_message(msg, smtp=sink.account(), sent=sent, attempt=1)
    # the worker crashed before recording the send; the job runs again
    result = await send_message(msg, smtp=sink.account(), sent=sent, attempt=2)
    assert result == {"message_id": msg.message_id, "reconciled": True}
    assert len(sink.with_message_id(msg.message_id)) == 1
    assert len(sent_copies(dovecot, sent, msg.message_id)) == 1


async def test_retry_when_first_attempt_never_sent(
    sink: SmtpSink, sent: ImapAccount, dovecot: Dovecot
) -> None:
    msg = outgoing(in_reply_to=None, references=[])
    result = await send_message(msg, smtp=sink.account(), sent=sent, attempt=2)
    assert result["reconciled"] is False and result["sent_copy"] is True
    [received] = sink.with_message_id(msg.message_id)
    assert "In-Reply-To" not in message_from_bytes(received.data) and len(sink.messages) == 1
    assert len(sent_copies(dovecot, sent, msg.message_id)) == 1


async def test_without_sent_account_sends_without_copy(sink: SmtpSink) -> None:
    result = await send_message(outgoing(), smtp=sink.account(), sent=None, attempt=2)
    assert result["sent_copy"] is False and len(sink.messages) == 1


async def test_wrong_smtp_password_is_auth_error(sink: SmtpSink, sent: ImapAccount) -> None:
    with pytest.raises(ToolAuthError) as info:
        await send_message(outgoing(), smtp=sink.account(password="wrong-pass"), sent=sent, attempt=1)
    assert "535" in str(info.value)
    assert "wrong-pass" not in str(info.value) and "refunded" not in str(info.value)
    assert sink.messages == []


async def test_stopped_server_is_unavailable(sent: ImapAccount, dovecot: Dovecot) -> None:
    down = SmtpSink()
    down.start()
    account = down.account()
    down.stop()
    msg = outgoing()
    with pytest.raises(ToolUnavailable) as info:
        await send_message(msg, smtp=account, sent=sent, attempt=1)
    assert f"127.0.0.1:{down.port}" in str(info.value)
    assert sent_copies(dovecot, sent, msg.message_id) == []


async def test_451_is_unavailable_then_retry_sends_once(
    sink: SmtpSink, sent: ImapAccount, dovecot: Dovecot
) -> None:
    msg = outgoing()
    sink.fail_next_data(1)
    with pytest.raises(ToolUnavailable, match=r"451 4\.3\.0"):
        await send_message(msg, smtp=sink.account(), sent=sent, attempt=1)
    result = await send_message(msg, smtp=sink.account(), sent=sent, attempt=2)
    assert result["reconciled"] is False
    assert len(sink.with_message_id(msg.message_id)) == 1
    assert len(sent_copies(dovecot, sent, msg.message_id)) == 1


async def test_refused_recipient_is_a_tool_error(sink: SmtpSink, sent: ImapAccount) -> None:
    sink.refused_recipients.add("nobody@example.test")
    with pytest.raises(ToolError) as info:
        await send_message(outgoing(to="nobody@example.test"), smtp=sink.account(), sent=sent, attempt=1)
    assert not isinstance(info.value, ToolUnavailable | ToolAuthError)
    assert "550 5.1.1" in str(info.value) and "nobody@" not in str(info.value)


async def test_drop_after_data_is_unknown_outcome(
    sink: SmtpSink, sent: ImapAccount, dovecot: Dovecot
) -> None:
    msg = outgoing()
    sink.drop_after_next_data()
    with pytest.raises(ToolUnavailable, match="may have been delivered"):
        await send_message(msg, smtp=sink.account(), sent=sent, attempt=1)
    # Documented limit: SMTP has no idempotency, so the sink got it but Sent has no copy.
    assert len(sink.with_message_id(msg.message_id)) == 1
    assert sent_copies(dovecot, sent, msg.message_id) == []


async def test_xoauth2_token_file(sent: ImapAccount, tmp_path: Path) -> None:
    oauth = SmtpSink(username="agent@mailspine.test", oauth2_token="ya29.test-token")
    oauth.start()
    try:
        token = tmp_path / "token"
        token.write_text("ya29.test-token\n")
        account = oauth.account(oauth2_token_file=token)
        result = await send_message(outgoing(), smtp=account, sent=None, attempt=1)
        assert result["reconciled"] is False and len(oauth.messages) == 1
        token.write_text("ya29.expired")
        with pytest.raises(ToolAuthError):
            await send_message(outgoing(), smtp=account, sent=None, attempt=1)
        assert len(oauth.messages) == 1
    finally:
        oauth.stop()


async def test_span_has_no_addresses_or_body(
    sink: SmtpSink, sent: ImapAccount, monkeypatch: pytest.MonkeyPatch
) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr("tools.base.tracer", lambda: provider.get_tracer("test"))
    msg = outgoing()
    await send_message(msg, smtp=sink.account(), sent=sent, attempt=1)
    [span] = exporter.get_finished_spans()
    assert span.name == "execute_tool send_reply"
    attributes = dict(span.attributes or {})
    assert attributes["mailspine.send.sent_copy"] is True
    assert not [v for v in attributes.values() if isinstance(v, str) and ("@" in v or "refund" in v)]


async def test_retry_never_sends_blind_when_sent_folder_is_unreachable(
    sink: SmtpSink, sent: ImapAccount
) -> None:
    unreachable = sent.model_copy(update={"port": free_port()})
    with pytest.raises(ToolUnavailable, match="sent folder"):
        await send_message(outgoing(), smtp=sink.account(), sent=unreachable, attempt=2)
    assert sink.messages == []


async def test_first_attempt_sends_even_if_the_sent_copy_fails(sink: SmtpSink, sent: ImapAccount) -> None:
    unreachable = sent.model_copy(update={"port": free_port()})
    result = await send_message(outgoing(), smtp=sink.account(), sent=unreachable, attempt=1)
    assert result["sent_copy"] is False and len(sink.messages) == 1


async def test_non_ascii_address_is_a_tool_error(sink: SmtpSink) -> None:
    with pytest.raises(ToolError) as info:
        await send_message(outgoing(to="jürgen@example.test"), smtp=sink.account(), sent=None, attempt=1)
    assert not isinstance(info.value, ToolUnavailable) and sink.messages == []


class Record:
    """A ``SendRecord`` that remembers what the sink held when it was asked to commit."""

    def __init__(self, sink: SmtpSink, *, fail: bool = False) -> None:
        self.sink, self.fail = sink, fail
        self.committed_with: list[int] = []
        self.revoked = 0

    def commit(self) -> None:
        self.committed_with.append(len(self.sink.messages))
        if self.fail:
            raise RuntimeError("database down")

    def revoke(self) -> None:
        self.revoked += 1


async def test_the_record_is_committed_before_the_end_of_data(sink: SmtpSink, sent: ImapAccount) -> None:
    record = Record(sink)
    msg = outgoing(body="Line one\n.\n..starts with dots\n")  # dot-stuffing survives the split DATA
    result = await send_message(msg, smtp=sink.account(), sent=sent, attempt=1, record=record)
    assert record.committed_with == [0] and record.revoked == 0  # committed while nothing was delivered
    [received] = sink.messages
    assert result["reconciled"] is False and result["sent_copy"] is True
    body = message_from_bytes(received.data, policy=default).get_content().replace("\r\n", "\n")
    assert body == "Line one\n.\n..starts with dots\n"


async def test_a_send_that_cannot_be_recorded_is_abandoned(sink: SmtpSink, sent: ImapAccount) -> None:
    record = Record(sink, fail=True)
    with pytest.raises(ToolUnavailable, match="abandoned before the end of data"):
        await send_message(outgoing(), smtp=sink.account(), sent=sent, attempt=1, record=record)
    assert sink.messages == []  # the server never saw the end of data: nothing delivered


async def test_a_refusal_after_the_data_revokes_the_record(sink: SmtpSink, sent: ImapAccount) -> None:
    record = Record(sink)
    sink.fail_next_data(1)
    with pytest.raises(ToolUnavailable, match=r"451 4\.3\.0"):
        await send_message(outgoing(), smtp=sink.account(), sent=sent, attempt=1, record=record)
    assert record.committed_with == [0] and record.revoked == 1 and sink.messages == []
