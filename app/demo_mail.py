"""``mailspine demo --imap``: a local dovecot (IMAP in) and SMTP sink (out) around the demo.

The demo mailbox is appended to a fresh dovecot user's INBOX; the worker's poller ingests it over
real IMAP and approved/automatic replies go out over real SMTP, with copies in the user's Sent
folder. Needs Debian's ``dovecot-imapd`` and root (dovecot runs its mail processes as nobody).
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from app.errors import ConfigurationError
from infra.mail.smtp_sink import SmtpSink


@dataclass
class LocalMail:
    env: dict[str, str]
    sink: SmtpSink
    imap_port: int


@contextmanager
def local_mail_servers(root: Path, mailbox: Path) -> Iterator[LocalMail]:
    if not (shutil.which("dovecot") or Path("/usr/sbin/dovecot").exists()):
        raise ConfigurationError(
            "--imap needs dovecot: apt-get install --no-install-recommends dovecot-imapd"
        )
    if os.geteuid() != 0:
        raise ConfigurationError(
            "--imap runs a private dovecot, which needs root; run the demo without --imap"
        )
    from infra.mail.dovecot import Dovecot

    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd logs every SMTP command at INFO
    shutil.rmtree(root, ignore_errors=True)
    server, sink = Dovecot(root=root), SmtpSink(username="mailspine", password=secrets.token_urlsafe(16))
    server.start()
    sink.start()
    try:
        user = server.add_user("support", secrets.token_urlsafe(12))
        server.create_folder(user.name, user.password, "Sent")
        for path in sorted(mailbox.glob("*.eml")):
            server.append(user.name, user.password, "INBOX", path.read_bytes())
        imap = {
            "name": "demo-imap",
            "host": server.host,
            "port": server.port,
            "security": "none",
            "username": user.name,
            "password": user.password,
        }
        smtp = {
            "host": sink.host,
            "port": sink.port,
            "security": "none",
            "username": sink.username,
            "password": sink.password,
            "from_address": "support@northwind.example",
            "sent_copy_account": "demo-imap",
        }
        env = {"MAILSPINE_IMAP_ACCOUNTS": json.dumps([imap]), "MAILSPINE_SMTP": json.dumps(smtp)}
        yield LocalMail(env=env, sink=sink, imap_port=server.port)
    finally:
        sink.stop()
        server.stop(remove_data=True)
