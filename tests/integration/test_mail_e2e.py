"""Real mailbox end to end: dovecot IMAP in → worker pipeline → aiosmtpd out + a copy in Sent."""

from __future__ import annotations

import json
import re

import pytest

from app.settings import REPO_ROOT
from infra.mail.dovecot import Dovecot, MailUser
from infra.mail.smtp_sink import SmtpSink
from tests.integration.test_pipeline import email_status, wait_for
from tests.support.stack import DEMO_MAILBOX, running_stack

pytestmark = pytest.mark.integration


def _unique(name: str, tag: str) -> tuple[bytes, str]:
    raw = (DEMO_MAILBOX / name).read_bytes()
    raw = re.sub(rb"(?im)^(Message-ID:\s*<)", rb"\g<1>" + tag.encode() + b".", raw, count=1)
    message_id = re.search(rb"(?im)^Message-ID:\s*(<[^>]+>)", raw)
    assert message_id
    return raw, message_id.group(1).decode()


def test_imap_in_smtp_out_with_review_and_sent_copies(
    pg_server_url: str, dovecot: Dovecot, mail_user: MailUser, smtp_sink: SmtpSink
) -> None:
    smtp_sink.reset()
    dovecot.create_folder(mail_user.name, mail_user.password, "Sent")
    auto_raw, auto_id = _unique("01-order-status-tent.eml", mail_user.name)
    review_raw, review_id = _unique("06-refund-large-eur.eml", mail_user.name)
    imap = {
        "name": "support",
        "host": dovecot.host,
        "port": dovecot.port,
        "security": "none",
        "username": mail_user.name,
        "password": mail_user.password,
        "timeout_s": 10,
    }
    smtp = {
        "host": smtp_sink.host,
        "port": smtp_sink.port,
        "security": "none",
        "username": smtp_sink.username,
        "password": smtp_sink.password,
        "from_address": "support@mailspine.test",
        "sent_copy_account": "support",
    }
    env = {"MAILSPINE_IMAP_ACCOUNTS": json.dumps([imap]), "MAILSPINE_SMTP": json.dumps(smtp)}
    with running_stack(pg_server_url, REPO_ROOT / "var" / "test" / "logs" / "mail", env=env) as stack:
        stack.start_api()
        stack.start_worker()
        dovecot.append(mail_user.name, mail_user.password, "INBOX", auto_raw)
        dovecot.append(mail_user.name, mail_user.password, "INBOX", review_raw)

        def row(message_id: str) -> int | None:
            rows = stack.sql("SELECT id FROM emails WHERE message_id = %s", message_id)
            return int(rows[0][0]) if rows else None

        wait_for(lambda: row(auto_id) is not None and row(review_id) is not None, what="IMAP ingest")
        auto, review = row(auto_id), row(review_id)
        assert auto and review
        wait_for(lambda: email_status(stack, auto) == "done", what="auto reply")
        wait_for(lambda: email_status(stack, review) == "review", what="review pause")

        [sent] = smtp_sink.messages  # one reply, to the sender, threaded on the original
        assert sent.data.count(b"In-Reply-To: " + auto_id.encode()) == 1
        reply_id = re.search(rb"(?im)^Message-ID:\s*(<[^>]+>)", sent.data)
        assert reply_id
        with dovecot.client(mail_user.name) as client:
            client.select_folder("Sent", readonly=True)
            assert client.search(["HEADER", "Message-ID", reply_id.group(1).decode()])

        pending = stack.api.get("/v1/reviews").json()
        [item] = [r for r in pending if r["email_id"] == review]
        answer = stack.api.post(
            f"/v1/reviews/{item['id']}/decision",
            json={"decision": "approve", "payload_hash": item["payload_hash"]},
        )
        assert answer.status_code == 200, answer.text
        wait_for(lambda: email_status(stack, review) == "done", what="approved reply")
        assert len(smtp_sink.messages) == 2
        statuses = stack.sql("SELECT status FROM outbound_messages ORDER BY id")
        assert [s for (s,) in statuses] == ["sent", "sent"]
        sends = stack.sql(
            "SELECT count(*) FROM side_effects WHERE action = 'send_reply' AND status = 'succeeded'"
        )
        assert sends[0][0] == 2
