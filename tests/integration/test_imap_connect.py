"""connect_imap against a real dovecot: login, wrong password, closed port, missing XOAUTH2 token."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.errors import MailboxAuthError, MailboxUnavailable
from infra.mail.dovecot import Dovecot, MailUser, free_port, imap_account
from tools.imap_connect import connect_imap

pytestmark = pytest.mark.integration


def test_good_login(dovecot: Dovecot, mail_user: MailUser) -> None:
    client = connect_imap(imap_account(dovecot, mail_user.name, mail_user.password))
    try:
        assert client.select_folder("INBOX")[b"EXISTS"] == 0
    finally:
        client.logout()


def test_password_file_is_read_at_connect(dovecot: Dovecot, mail_user: MailUser, tmp_path: Path) -> None:
    secret = tmp_path / "imap-password"
    secret.write_text(mail_user.password + "\n")
    account = imap_account(dovecot, mail_user.name, mail_user.password, password_file=secret)
    connect_imap(account).logout()
    secret.write_text("rotated-elsewhere")
    with pytest.raises(MailboxAuthError):
        connect_imap(account)


def test_wrong_password(dovecot: Dovecot, mail_user: MailUser) -> None:
    with pytest.raises(MailboxAuthError) as info:
        connect_imap(imap_account(dovecot, mail_user.name, "not-the-password"))
    assert mail_user.name in str(info.value)
    assert "not-the-password" not in str(info.value)


def test_closed_port_is_unavailable(dovecot: Dovecot, mail_user: MailUser) -> None:
    port = free_port()
    with pytest.raises(MailboxUnavailable) as info:
        connect_imap(imap_account(dovecot, mail_user.name, mail_user.password, port=port))
    assert f"127.0.0.1:{port}" in str(info.value)


def test_missing_oauth2_token_file(dovecot: Dovecot, mail_user: MailUser, tmp_path: Path) -> None:
    missing = tmp_path / "no-such-token"
    account = imap_account(dovecot, mail_user.name, "", oauth2_token_file=missing)
    with pytest.raises(MailboxAuthError) as info:
        connect_imap(account)
    assert str(missing) in str(info.value)


def test_reconnects_after_server_restart(dovecot: Dovecot, mail_user: MailUser) -> None:
    account = imap_account(dovecot, mail_user.name, mail_user.password)
    uid = dovecot.append(mail_user.name, mail_user.password, "INBOX", b"Subject: kept\r\n\r\nhi\r\n")
    dovecot.restart()
    client = connect_imap(account)
    try:
        client.select_folder("INBOX", readonly=True)
        assert client.search(["ALL"]) == [uid]
    finally:
        client.logout()


def test_reset_uidvalidity_renumbers_the_folder(dovecot: Dovecot, mail_user: MailUser) -> None:
    user, password = mail_user.name, mail_user.password
    dovecot.append(user, password, "Archive", b"Subject: a\r\n\r\na\r\n", flags=[b"\\Flagged"])
    before = dovecot.uidvalidity(user, password, "Archive")
    after = dovecot.reset_uidvalidity(user, "Archive")
    assert after != before
    assert dovecot.uidvalidity(user, password, "Archive") == after
    with dovecot.client(user) as c:
        c.select_folder("Archive", readonly=True)
        [data] = c.fetch(c.search(["ALL"]), ["FLAGS"]).values()
    assert b"\\Flagged" in data[b"FLAGS"]  # messages and flags survive, numbering starts over


def test_tls_failure_is_a_clear_unavailable_error(dovecot: Dovecot, mail_user: MailUser) -> None:
    # Implicit TLS against the plain-text port: the handshake fails, and the error says so and where.
    account = imap_account(dovecot, mail_user.name, mail_user.password, security="ssl")
    with pytest.raises(MailboxUnavailable) as info:
        connect_imap(account)
    assert f"{dovecot.host}:{dovecot.port}" in str(info.value)
    assert mail_user.password not in str(info.value)
