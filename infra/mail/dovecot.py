"""A local IMAP server: Debian's dovecot run as a private foreground process (tests, demo, bench).

One ``Dovecot`` owns a temp dir with its config, runtime dirs, log, passwd files and maildirs
(``maildir:ROOT/mail/%u``). ``restart()`` keeps port, users and mail.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from imapclient import IMAPClient

from app.settings import ImapAccount

PACKAGE = "dovecot-imapd"
_CONFIG = """\
protocols = imap
listen = {d.host}
base_dir = {d.root}/run
state_dir = {d.root}/state
log_path = {d.log_path}
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
mail_location = maildir:{d.mail_dir}/%u
mail_max_userip_connections = 500
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {d.passwd_dir}/%u
}}
userdb {{
  driver = static
  args = uid={d._uid} gid={d._gid} home={d.mail_dir}/%u
}}
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
service imap-login {{
  inet_listener imap {{
    port = {d.port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
"""


def ensure_dovecot_installed() -> str:
    """Path of the dovecot binary; installs Debian's package when it is missing and we are root."""
    found = shutil.which("dovecot") or shutil.which("dovecot", path="/usr/sbin")
    if found:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise RuntimeError(
            f"dovecot is not installed: run `apt-get install --no-install-recommends {PACKAGE}`"
        )
    subprocess.run(
        f"apt-get update -qq && apt-get install -y -qq --no-install-recommends {PACKAGE}",
        shell=True,
        check=True,
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
    )
    return shutil.which("dovecot", path="/usr/sbin:/usr/bin") or "/usr/sbin/dovecot"


def _ensure_folder(client: IMAPClient, folder: str) -> None:
    if not client.folder_exists(folder):
        client.create_folder(folder)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class MailUser:
    name: str
    password: str


class Dovecot:
    host = "127.0.0.1"

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root or tempfile.mkdtemp(prefix="mailspine-dovecot-"))
        self.mail_dir, self.passwd_dir = self.root / "mail", self.root / "passwd.d"
        self.log_path = self.root / "dovecot.log"
        self.port = free_port()
        self.users: dict[str, str] = {}
        self._proc: subprocess.Popen[bytes] | None = None
        if os.geteuid() != 0:  # a non-root dovecot also needs chroot-free services and own groups
            raise RuntimeError("infra.mail.dovecot runs dovecot as root (mail processes as nobody)")
        nobody = pwd.getpwnam("nobody")  # owns the maildirs; runs the imap processes
        self._uid, self._gid = nobody.pw_uid, nobody.pw_gid
        atexit.register(self.stop)  # no orphaned servers when a test run dies

    def start(self) -> None:
        if self._proc is not None:
            return
        binary = ensure_dovecot_installed()
        for sub in (self.root / "run", self.root / "state", self.mail_dir, self.passwd_dir):
            sub.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o755)  # mail processes (uid nobody) must reach the maildirs
        os.chown(self.mail_dir, self._uid, self._gid)
        self._write_passwd(*self.users)
        config = self.root / "dovecot.conf"
        config.write_text(_CONFIG.format(d=self), encoding="utf-8")
        with open(self.root / "master.out", "ab") as out:
            # Own process group: stop() must also kill imap processes serving open sessions.
            self._proc = subprocess.Popen(
                [binary, "-F", "-c", str(config)], stdout=out, stderr=out, start_new_session=True
            )
        self._wait_ready()

    def stop(self, *, remove_data: bool = False) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
            # The master leaves imap processes with live clients running; a restart must drop them.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        if remove_data:
            shutil.rmtree(self.root, ignore_errors=True)

    def restart(self) -> None:
        """Same port, users and mail; open sessions are dropped (a "server restarted mid-IDLE")."""
        self.stop()
        self.start()

    def _wait_ready(self, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self._proc is not None and self._proc.poll() is None:
            with contextlib.suppress(OSError), socket.create_connection((self.host, self.port), 2) as s:
                if s.recv(200).startswith(b"* OK"):
                    return
            time.sleep(0.05)
        logs = [
            p.read_text(errors="replace") for p in (self.root / "master.out", self.log_path) if p.exists()
        ]
        tail = "\n".join("".join(logs).splitlines()[-20:])
        self.stop()
        raise RuntimeError(f"dovecot did not start on {self.host}:{self.port}:\n{tail}")

    def add_user(self, name: str, password: str) -> MailUser:
        """One passwd file per user: dovecot re-stats a passwd-file at most once a second, so a user
        added to a shared file right after a login could stay invisible for up to a second."""
        if not re.fullmatch(r"[A-Za-z0-9_.@+-]+", name) or ":" in password or "\n" in password:
            raise ValueError(f"unsupported test user name or password for {name!r}")
        self.users[name] = password
        self._write_passwd(name)
        return MailUser(name, password)

    def _write_passwd(self, *names: str) -> None:
        self.passwd_dir.mkdir(parents=True, exist_ok=True)
        for name in names:
            tmp = self.passwd_dir / f".{name}.tmp"
            tmp.write_text(f"{name}:{{PLAIN}}{self.users[name]}\n", encoding="utf-8")
            tmp.replace(self.passwd_dir / name)  # atomic: the auth process never sees half a file

    @contextmanager
    def client(self, user: str, password: str | None = None) -> Iterator[IMAPClient]:
        client = IMAPClient(self.host, port=self.port, ssl=False, timeout=10)
        try:
            client.login(user, self.users[user] if password is None else password)
            yield client
        finally:
            try:
                client.logout()
            except Exception:
                client.shutdown()

    def create_folder(self, user: str, password: str, folder: str) -> None:
        with self.client(user, password) as c:
            _ensure_folder(c, folder)

    def append(self, user: str, password: str, folder: str, raw: bytes, flags: Sequence[Any] = ()) -> int:
        """APPEND (creating the folder if missing); returns the new UID from APPENDUID."""
        with self.client(user, password) as c:
            _ensure_folder(c, folder)
            response = c.append(folder, raw, flags=tuple(flags))
        match = re.search(rb"APPENDUID \d+ (\d+)", response if isinstance(response, bytes) else b"")
        if not match:
            raise RuntimeError(f"dovecot did not return APPENDUID: {response!r}")
        return int(match.group(1))

    def uidvalidity(self, user: str, password: str, folder: str) -> int:
        with self.client(user, password) as c:
            status: dict[bytes, Any] = c.folder_status(folder, [b"UIDVALIDITY"])
        return int(status[b"UIDVALIDITY"])

    def reset_uidvalidity(self, user: str, folder: str) -> int:
        """Delete the UID list and indexes as a mailbox rebuild does; returns the new UIDVALIDITY."""
        before = self.uidvalidity(user, self.users[user], folder)
        box = self.mail_dir / user
        if folder.upper() != "INBOX":
            box = box / ("." + folder.replace("/", "."))
        for path in box.glob("dovecot*"):
            if path.name.startswith(("dovecot-uidlist", "dovecot.index")):
                path.unlink()
        after = self.uidvalidity(user, self.users[user], folder)
        if after == before:
            raise RuntimeError(f"UIDVALIDITY of {user}/{folder} did not change ({before})")
        return after


def imap_account(dovecot: Dovecot, user: str, password: str, **overrides: Any) -> ImapAccount:
    """An ``ImapAccount`` for this server (plain IMAP on loopback); overrides win."""
    name = "test-" + re.sub(r"[^a-z0-9_.-]", "-", user.lower())
    fields: dict[str, Any] = dict(name=name, host=dovecot.host, port=dovecot.port, security="none")
    fields.update(username=user, password=password, timeout_s=10.0, **overrides)
    if "password" not in overrides and overrides.keys() & {"password_file", "oauth2_token_file"}:
        del fields["password"]  # another secret source replaces the password
    return ImapAccount(**fields)
