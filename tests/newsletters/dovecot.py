"""A private Dovecot IMAP server for tests: its own config, directories and port on loopback.

`running_dovecot(user=..., password=...)` writes a config into a fresh temporary directory,
starts `dovecot -F -c <conf>` and stops it on exit. Run as root (CI), Dovecot's own service
users (`dovecot`, `dovenull`, created by the Debian package) run its internal and login
processes and mail is stored as `nobody`; run as anyone else, every process runs as that user.
"""

import base64
import grp
import imaplib
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.conftest import services_required


@dataclass
class Dovecot:
    host: str
    port: int
    user: str
    password: str
    root: Path

    def url(self, *, password: str | None = None, folder: str = "INBOX") -> str:
        secret = self.password if password is None else password
        return (f"imap://{quote(self.user, safe='')}:{quote(secret, safe='')}@{self.host}:"
                f"{self.port}/{quote(folder)}")

    def connect(self) -> imaplib.IMAP4:
        imap = imaplib.IMAP4(self.host, self.port, timeout=10)
        imap.login(imap._quote(self.user), self.password)
        return imap

    def log(self) -> str:
        path = self.root / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""


def dovecot_version() -> tuple[int, int] | None:
    binary = shutil.which("dovecot") or (
        "/usr/sbin/dovecot" if os.access("/usr/sbin/dovecot", os.X_OK) else None)
    if binary is None:
        return None
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, check=True)
    major, minor = re.match(r"(\d+)\.(\d+)", out.stdout.strip()).groups()
    return int(major), int(minor)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _identities() -> dict:
    """Who runs what: Dovecot refuses mail access as root, and as non-root it cannot switch."""
    if os.geteuid() == 0:
        mail = pwd.getpwnam("nobody")
        return {"internal_user": "dovecot", "internal_group": "dovecot", "login_user": "dovenull",
                "mail_uid": mail.pw_uid, "mail_gid": mail.pw_gid}
    me = pwd.getpwuid(os.geteuid())
    group = grp.getgrgid(os.getegid()).gr_name
    return {"internal_user": me.pw_name, "internal_group": group, "login_user": me.pw_name,
            "mail_uid": me.pw_uid, "mail_gid": os.getegid()}


def _config(root: Path, port: int, version: tuple[int, int], ids: dict) -> str:
    common = f"""
base_dir = {root}/run
state_dir = {root}/state
instance_name = crm-test-{port}
listen = 127.0.0.1
protocols = imap
ssl = no
log_path = {root}/dovecot.log
default_internal_user = {ids['internal_user']}
default_internal_group = {ids['internal_group']}
default_login_user = {ids['login_user']}
first_valid_uid = {min(ids['mail_uid'], 500)}
first_valid_gid = {min(ids['mail_gid'], 1)}
auth_mechanisms = plain login
service imap-login {{
  inet_listener imap {{
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
"""
    if os.geteuid() != 0:  # only root may chroot
        common += "service anvil {\n  chroot =\n}\nservice imap-login {\n  chroot =\n}\n"
    if version >= (2, 4):  # 2.4 renamed most settings and made auth blocks named
        return f"""dovecot_config_version = 2.4.0
dovecot_storage_version = 2.4.0
{common}
auth_allow_cleartext = yes
mail_driver = maildir
mail_path = ~/Maildir
passdb passwd-file {{
  passwd_file_path = {root}/users
}}
userdb static {{
  fields {{
    uid = {ids['mail_uid']}
    gid = {ids['mail_gid']}
    home = {root}/mail/home
  }}
}}
"""
    return f"""{common}
disable_plaintext_auth = no
mail_location = maildir:~/Maildir
passdb {{
  driver = passwd-file
  args = {root}/users
}}
userdb {{
  driver = static
  args = uid={ids['mail_uid']} gid={ids['mail_gid']} home={root}/mail/home
}}
"""


def _accepting(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1) as sock:
            sock.settimeout(2)
            return sock.recv(64).startswith(b"* OK")
    except OSError:
        return False


@contextmanager
def running_dovecot(*, user: str, password: str, startup_timeout: float = 15):
    version = dovecot_version()
    if version is None:
        reason = "dovecot not installed (apt-get install dovecot-imapd); .ci/run installs it"
        if services_required():
            pytest.fail(f"{reason} (required in CI)")
        pytest.skip(reason)
    ids = _identities()
    # Not pytest's tmp_path: that is 0700 root-only, and Dovecot's unprivileged processes
    # (as root: `dovecot`, `dovenull`, mail as `nobody`) must reach their sockets and mail.
    root = Path(tempfile.mkdtemp(prefix="crm-dovecot-"))
    root.chmod(0o755)
    for sub in ("run", "state", "mail/home"):
        (root / sub).mkdir(parents=True)
    os.chown(root / "mail" / "home", ids["mail_uid"], ids["mail_gid"])
    # Base64, so a password may hold the file's ":" separator.
    secret = base64.b64encode(password.encode()).decode()
    (root / "users").write_text(f"{user}:{{PLAIN.B64}}{secret}::::::\n")
    (root / "users").chmod(0o644)  # read by the auth process (the internal user)
    port = _free_port()
    conf = root / "dovecot.conf"
    conf.write_text(_config(root, port, version, ids))
    server = Dovecot(host="127.0.0.1", port=port, user=user, password=password, root=root)
    process = subprocess.Popen([shutil.which("dovecot") or "/usr/sbin/dovecot", "-F", "-c",
                                str(conf)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + startup_timeout
        while not _accepting(server.host, port):
            if process.poll() is not None or time.monotonic() > deadline:
                output = process.stdout.read().decode(errors="replace") if process.poll() \
                    is not None else ""
                pytest.fail(f"dovecot did not start on port {port}: {output}\n{server.log()}")
            time.sleep(0.1)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        process.stdout.close()
        shutil.rmtree(root, ignore_errors=True)
