"""A real IMAP server for tests: Debian's dovecot run as a private foreground process.

One ``Dovecot`` owns a temp dir holding its config, runtime dirs, log and maildirs. Users live in a
passwd-file (dovecot re-reads it on change); mail is stored as ``maildir:ROOT/mail/%u``.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
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


def ensure_dovecot_installed() -> str:
    """Path of the dovecot binary; installs Debian's package when missing and we are root."""
    found = shutil.which("dovecot") or next((p for p in ("/usr/sbin/dovecot",) if os.path.exists(p)), None)
    if found:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise RuntimeError(
            f"dovecot is not installed: run `apt-get install --no-install-recommends {PACKAGE}`"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(
        f"apt-get update -qq && apt-get install -y -qq --no-install-recommends {PACKAGE}",
        shell=True,
        check=True,
        env=env,
    )
    found = shutil.which("dovecot") or "/usr/sbin/dovecot"
    if not os.path.exists(found):
        raise RuntimeError(f"installed {PACKAGE} but found no dovecot binary")
    return found


def _free_port() -> int:
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
        self.mail_dir = self.root / "mail"
        self.config_path = self.root / "dovecot.conf"
        self.passwd_dir = self.root / "passwd.d"  # one file per user, see add_user
        self.log_path = self.root / "dovecot.log"
        self.port = _free_port()
        self.users: dict[str, str] = {}
        self._proc: subprocess.Popen[bytes] | None = None
        if os.geteuid() == 0:  # mail processes run as an unprivileged user that owns the maildirs
            nobody = pwd.getpwnam("nobody")
            self._uid, self._gid, self._service_users = nobody.pw_uid, nobody.pw_gid, ""
        else:  # untested fallback: everything runs as ourselves
            me = pwd.getpwuid(os.getuid())
            self._uid, self._gid = me.pw_uid, me.pw_gid
            self._service_users = f"default_internal_user = {me.pw_name}\ndefault_login_user = {me.pw_name}\n"

    # --- process ---------------------------------------------------------------------------
    def start(self) -> None:
        if self._proc is not None:
            return
        binary = ensure_dovecot_installed()
        for sub in ("run", "state"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        self.mail_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o755)  # mail processes (uid nobody) must traverse to the maildirs
        os.chown(self.mail_dir, self._uid, self._gid)
        self._write_passwd(*self.users)
        self.config_path.write_text(self._config(), encoding="utf-8")
        log = open(self.root / "master.out", "ab")  # noqa: SIM115 - the child keeps it
        self._proc = subprocess.Popen([binary, "-F", "-c", str(self.config_path)], stdout=log, stderr=log)
        log.close()
        self._wait_ready()

    def stop(self, *, remove_data: bool = False) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()  # shutdown_clients=yes: open IMAP sessions are dropped too
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        if remove_data:
            shutil.rmtree(self.root, ignore_errors=True)

    def restart(self) -> None:
        """Same port, same users and mail: what a client sees when the server restarts mid-session."""
        self.stop()
        self.start()

    def _wait_ready(self, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self._proc is not None
            if self._proc.poll() is not None:
                raise RuntimeError(f"dovecot exited with {self._proc.returncode}: {self.log_tail()}")
            try:
                with socket.create_connection((self.host, self.port), timeout=2) as s:
                    if s.recv(200).startswith(b"* OK"):
                        return
            except OSError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"dovecot did not accept IMAP on {self.host}:{self.port}: {self.log_tail()}")

    def log_tail(self, lines: int = 20) -> str:
        text = ""
        for name in ("master.out", "dovecot.log"):
            path = self.root / name
            if path.exists():
                text += path.read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def _config(self) -> str:
        return f"""\
protocols = imap
listen = {self.host}
base_dir = {self.root}/run
state_dir = {self.root}/state
log_path = {self.log_path}
{self._service_users}ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
mail_location = maildir:{self.mail_dir}/%u
first_valid_uid = {min(self._uid, 500)}
first_valid_gid = {min(self._gid, 1)}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {self.passwd_dir}/%u
}}
userdb {{
  driver = static
  args = uid={self._uid} gid={self._gid} home={self.mail_dir}/%u
}}
protocol imap {{
  mail_max_userip_connections = 200
}}
service imap-login {{
  inet_listener imap {{
    port = {self.port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
"""

    # --- users -----------------------------------------------------------------------------
    def add_user(self, name: str, password: str) -> MailUser:
        """Usable at once: a new user gets a new file (dovecot re-stats a passwd-file at most once a
        second, so rewriting one shared file could hide a user added right after a login)."""
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

    # --- IMAP helpers ----------------------------------------------------------------------
    @contextmanager
    def client(self, user: str, password: str | None = None) -> Iterator[IMAPClient]:
        client = IMAPClient(self.host, port=self.port, ssl=False, timeout=10)
        try:
            client.login(user, password if password is not None else self.users[user])
            yield client
        finally:
            try:
                client.logout()
            except Exception:
                client.shutdown()

    def create_folder(self, user: str, password: str, folder: str) -> None:
        with self.client(user, password) as c:
            if not c.folder_exists(folder):
                c.create_folder(folder)

    def append(
        self, user: str, password: str, folder: str, raw: bytes, flags: Sequence[str | bytes] = ()
    ) -> int:
        with self.client(user, password) as c:
            if not c.folder_exists(folder):
                c.create_folder(folder)
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
        """Drop the folder's UID list and indexes, as a mailbox rebuild does; messages stay.

        Dovecot rescans the maildir and assigns a new UIDVALIDITY and new UIDs. Returns the new value.
        """
        password = self.users[user]
        before = self.uidvalidity(user, password, folder)
        box = self.mail_dir / user
        if folder.upper() != "INBOX":
            box = box / ("." + folder.replace("/", "."))
        for path in box.glob("dovecot*"):
            if path.name.startswith(("dovecot-uidlist", "dovecot.index")):
                path.unlink()
        after = self.uidvalidity(user, password, folder)
        if after == before:
            raise RuntimeError(f"UIDVALIDITY of {user}/{folder} did not change ({before})")
        return after


def imap_account(dovecot: Dovecot, user: str, password: str, **overrides: Any) -> ImapAccount:
    fields: dict[str, Any] = {
        "name": "test-" + re.sub(r"[^a-z0-9_.-]", "-", user.lower()),
        "host": dovecot.host,
        "port": dovecot.port,
        "security": "none",
        "username": user,
        "password": password,
        "timeout_s": 10.0,
    }
    fields.update(overrides)
    if "password" not in overrides and overrides.keys() & {
        "password_file",
        "oauth2_token_file",
        "oauth2_token_command",
    }:
        del fields["password"]  # another secret source replaces the password
    return ImapAccount(**fields)
