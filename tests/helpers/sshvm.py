"""A loopback SSH server (paramiko) standing in for the build VM of a `packer build`.

It speaks real SSH to Packer's communicator, but it is no machine: it accepts exactly user
root with a password the caller says was typed into the VM's console, stores what `scp -t`
uploads under a private root directory (a remote /tmp/x is root/tmp/x, never this machine's
/tmp), and runs NOTHING: every other command is recorded and answered with the exit status
a function of the test chooses (the provisioner script writes /dev/sda).
"""

from __future__ import annotations

import shlex
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import paramiko
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

# Bounds every wait on Packer, so a client that stops talking fails the test instead of
# hanging it.
_TIMEOUT = 30.0
_MAX_LINE = 4096


def host_key(directory: Path) -> paramiko.PKey:
    """A fresh Ed25519 host key, written (OpenSSH format) to directory/ssh_host_ed25519_key."""
    key = ed25519.Ed25519PrivateKey.generate()
    path = directory / "ssh_host_ed25519_key"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)
    return paramiko.Ed25519Key(filename=str(path))


@dataclass
class Record:
    """What the clients did, in order; lists are appended from the server's threads."""

    logins: list[tuple[str, str]] = field(default_factory=list)  # accepted (user, password)
    refused: list[tuple[str, str]] = field(default_factory=list)
    uploads: dict[str, bytes] = field(default_factory=dict)  # remote path -> content
    commands: list[str] = field(default_factory=list)  # everything but scp, unexecuted
    errors: list[str] = field(default_factory=list)
    # Connections closed before the SSH banner: Packer's TCP probe of the port.
    probes: int = 0


class _Session(paramiko.ServerInterface):
    def __init__(self, vm: BuildVM) -> None:
        self.vm = vm

    def get_allowed_auths(self, username: str) -> str:
        return "password"

    def check_auth_password(self, username: str, password: str) -> int:
        if username == "root" and password in self.vm.passwords():
            self.vm.record.logins.append((username, password))
            return paramiko.AUTH_SUCCESSFUL
        self.vm.record.refused.append((username, password))
        return paramiko.AUTH_FAILED

    def check_channel_request(self, kind: str, chanid: int) -> int:
        if kind == "session":
            return paramiko.OPEN_SUCCEEDED
        return paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED

    def check_channel_exec_request(self, channel: paramiko.Channel, command: bytes) -> bool:
        self.vm.start(channel, command.decode())
        return True


class BuildVM:
    """The server on 127.0.0.1:port until close()."""

    def __init__(
        self,
        root: Path,
        key: paramiko.PKey,
        passwords: Callable[[], set[str]],
        answer: Callable[[str], int],
    ) -> None:
        """passwords: root's at the time of a login; answer: a command's exit status."""
        self.root = root
        self.key = key
        self.passwords = passwords
        self.answer = answer
        self.record = Record()
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(0.2)  # how often the accept loop looks at _stop
        self.port = int(self._sock.getsockname()[1])
        self._stop = threading.Event()
        self._transports: list[paramiko.Transport] = []
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._accepting = self._spawn(self._accept)

    def _spawn(self, target: Callable[..., None], *args: object) -> threading.Thread:
        thread = threading.Thread(target=target, args=args, daemon=True)
        with self._lock:
            self._threads.append(thread)
        thread.start()
        return thread

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                continue
            transport = paramiko.Transport(conn)
            transport.add_server_key(self.key)
            with self._lock:
                self._transports.append(transport)
            try:
                transport.start_server(server=_Session(self))
            except (paramiko.SSHException, EOFError, OSError) as error:
                if "banner" in str(error):
                    self.record.probes += 1
                else:
                    self.record.errors.append(f"handshake: {error}")
                transport.close()

    def start(self, channel: paramiko.Channel, command: str) -> None:
        self._spawn(self._serve, channel, command)

    def _serve(self, channel: paramiko.Channel, command: str) -> None:
        channel.settimeout(_TIMEOUT)
        try:
            argv = shlex.split(command)
            flags = "".join(a[1:] for a in argv[1:-1] if a.startswith("-"))
            if argv[:1] == ["scp"] and "t" in flags:
                status = self._scp_sink(channel, PurePosixPath(argv[-1]))
            else:
                self.record.commands.append(command)
                # Packer closes its (empty) stdin once the exec request is answered: from then
                # on the exit status can no longer overtake that answer.
                while channel.recv(_MAX_LINE):
                    pass
                status = self.answer(command)
            channel.send_exit_status(status)
        except Exception as error:  # the test sees it in record.errors
            self.record.errors.append(f"{command}: {error!r}")
        finally:
            channel.close()

    def _scp_sink(self, channel: paramiko.Channel, target: PurePosixPath) -> int:
        """`scp -t target`: files into the directory target, as OpenSSH's sink does."""
        channel.sendall(b"\0")
        while True:
            line = _line(channel)
            if not line:
                return 0
            if line.startswith(b"T"):  # times: nothing to keep
                channel.sendall(b"\0")
                continue
            if not line.startswith(b"C"):
                channel.sendall(b"\x01unsupported scp record\n")
                self.record.errors.append(f"scp record {line!r}")
                return 1
            _, size, name = line[1:].decode().split(" ", 2)
            if "/" in name or name in ("", ".", ".."):
                channel.sendall(b"\x01bad file name\n")
                self.record.errors.append(f"scp file name {name!r}")
                return 1
            channel.sendall(b"\0")
            data = _exactly(channel, int(size) + 1)
            if data[-1:] != b"\0":
                self.record.errors.append("scp data not terminated")
                return 1
            remote = target / name
            local = self.root / remote.relative_to("/")
            local.parent.mkdir(parents=True, exist_ok=True)
            local.write_bytes(data[:-1])
            self.record.uploads[str(remote)] = data[:-1]
            channel.sendall(b"\0")

    def close(self) -> None:
        self._stop.set()
        self._accepting.join(_TIMEOUT)
        self._sock.close()
        with self._lock:
            transports, threads = list(self._transports), list(self._threads)
        for transport in transports:
            transport.close()
        for thread in [*threads, *transports]:
            thread.join(_TIMEOUT)
        alive = [t for t in [*threads, *transports] if t.is_alive()]
        assert not alive, f"SSH stand-in threads still running: {alive}"


def _line(channel: paramiko.Channel) -> bytes:
    """One scp record without its newline; b"" at the end of the input."""
    out = b""
    while not out.endswith(b"\n"):
        byte = channel.recv(1)
        if not byte:
            assert not out, f"scp record cut short: {out!r}"
            return b""
        out += byte
        assert len(out) <= _MAX_LINE, "scp record too long"
    return out[:-1]


def _exactly(channel: paramiko.Channel, size: int) -> bytes:
    out = b""
    while len(out) < size:
        chunk = channel.recv(min(size - len(out), 32768))
        assert chunk, "scp upload cut short"
        out += chunk
    return out
