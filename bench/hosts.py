"""Several hosts on one machine: network namespaces on a bridge, each with its own address.

Each host is a network namespace joined to a bridge in the root namespace by a veth pair; the
machine itself (the root namespace) is 10.231.0.1 on the bridge and reaches every host. A host's
processes run with ``ip netns exec`` and share the machine's file system, but see only their own
network. ``cut`` takes the bridge end of a host's veth down: its packets go nowhere and nothing
tells its peers, as when a machine loses power or its cable; ``restore`` brings the link back.

Needs root and iproute2. Everything made here is named with ``PREFIX``, and ``teardown`` kills
every process left in those namespaces, deletes them and the bridge. ``HostNetwork`` tears down
whatever an earlier run left before it builds, and again on the way out (exceptions, Ctrl-C,
SIGTERM); ``python bench/hosts.py --clean`` does it by hand.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

PREFIX = "stmh"
BRIDGE = f"{PREFIX}0"
SUBNET = "10.231.0"
MACHINE_ADDRESS = f"{SUBNET}.1"


class HostsUnavailable(RuntimeError):
    """This machine cannot make hosts (not root, no iproute2, no namespaces)."""


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], check=check, capture_output=True, text=True)


def unavailable_reason() -> str | None:
    """Why hosts cannot be made here, or None when they can."""
    if os.geteuid() != 0:
        return "needs root (network namespaces, veth and a bridge)"
    if shutil.which("ip") is None:
        return "needs iproute2 (the ip command)"
    probe = f"{PREFIX}-probe"
    made = _ip("netns", "add", probe, check=False)
    if made.returncode != 0:
        return f"cannot make a network namespace: {made.stderr.strip()}"
    try:
        for step in (
            ("link", "add", probe, "type", "veth", "peer", "name", "eth0", "netns", probe),
            ("link", "add", f"{probe}0", "type", "bridge"),
        ):
            done = _ip(*step, check=False)
            if done.returncode != 0:
                return f"cannot make a veth pair or a bridge: {done.stderr.strip()}"
    finally:
        _ip("link", "del", probe, check=False)
        _ip("link", "del", f"{probe}0", check=False)
        _ip("netns", "del", probe, check=False)
    return None


@dataclass(frozen=True)
class Host:
    name: str
    address: str

    @property
    def namespace(self) -> str:
        return f"{PREFIX}-{self.name}"

    @property
    def link(self) -> str:
        """The bridge end of the host's veth, in the root namespace (at most 15 characters)."""
        return f"{PREFIX}-{self.name}"[:15]

    def command(self, argv: Iterable[str]) -> list[str]:
        return ["ip", "netns", "exec", self.namespace, *argv]


def namespaces() -> list[str]:
    """This module's namespaces that exist now."""
    listed = _ip("netns", "list", check=False).stdout.split()
    return [name for name in listed if name.startswith(f"{PREFIX}-")]


def namespace_pids(namespace: str) -> list[int]:
    """Processes in the namespace that have not ended (a zombie is reaped here when it is ours)."""
    found = [int(pid) for pid in _ip("netns", "pids", namespace, check=False).stdout.split() if pid.isdigit()]
    alive = []
    for pid in found:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state == "Z":
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass
            continue
        alive.append(pid)
    return alive


def links() -> list[str]:
    """This module's veth ends and bridge in the root namespace."""
    listed = _ip("-o", "link", "show", check=False).stdout.splitlines()
    names = [line.split(":")[1].strip().split("@")[0] for line in listed if ":" in line]
    return [name for name in names if name.startswith(PREFIX)]


def teardown(*, quiet: bool = True) -> list[str]:
    """Kill every process in this module's namespaces, delete them and the bridge; returns what went.

    Links come up first, so that the connections of the killed processes close at once instead of
    leaving sockets that retransmit into a cut link for minutes (they keep a namespace alive). The
    veth ends are deleted explicitly, which takes their peers along even then.
    """
    removed = []
    for link in links():
        _ip("link", "set", link, "up", check=False)
    for namespace in namespaces():
        # Twice: a process may fork while the first round is killing.
        for _ in range(2):
            for pid in namespace_pids(namespace):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + 5
            while namespace_pids(namespace) and time.monotonic() < deadline:
                time.sleep(0.05)
        _ip("netns", "del", namespace, check=False)
        removed.append(namespace)
    for link in links():
        _ip("link", "del", link, check=False)
        removed.append(link)
    if removed and not quiet:
        print(f"removed {', '.join(removed)}")  # noqa: T201
    return removed


class HostNetwork:
    """Hosts by name, each with its address's last number: ``HostNetwork({"data": 2, "worker-1": 21})``.

    A context manager: the hosts exist inside the ``with`` block and are gone after it, whatever
    happened. SIGTERM is turned into ``SystemExit`` meanwhile, so that it tears down as Ctrl-C does.
    """

    def __init__(self, hosts: dict[str, int]):
        self.hosts = {name: Host(name, f"{SUBNET}.{number}") for name, number in hosts.items()}
        self._previous_sigterm = None

    def __getitem__(self, name: str) -> Host:
        return self.hosts[name]

    def __enter__(self) -> HostNetwork:
        reason = unavailable_reason()
        if reason:
            raise HostsUnavailable(reason)
        self._previous_sigterm = signal.signal(signal.SIGTERM, _exit_on_sigterm)
        try:
            teardown()
            self.build()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        teardown()
        if self._previous_sigterm is not None:
            signal.signal(signal.SIGTERM, self._previous_sigterm)
            self._previous_sigterm = None

    def build(self) -> None:
        _ip("link", "add", BRIDGE, "type", "bridge")
        _ip("addr", "add", f"{MACHINE_ADDRESS}/24", "dev", BRIDGE)
        _ip("link", "set", BRIDGE, "up")
        for host in self.hosts.values():
            _ip("netns", "add", host.namespace)
            _ip("link", "add", host.link, "type", "veth", "peer", "name", "eth0", "netns", host.namespace)
            _ip("link", "set", host.link, "master", BRIDGE, "up")
            _ip("-n", host.namespace, "addr", "add", f"{host.address}/24", "dev", "eth0")
            _ip("-n", host.namespace, "link", "set", "eth0", "up")
            _ip("-n", host.namespace, "link", "set", "lo", "up")

    def cut(self, name: str) -> float:
        """Take the host's link down at the bridge; returns the time it happened."""
        _ip("link", "set", self.hosts[name].link, "down")
        return time.time()

    def restore(self, name: str) -> float:
        _ip("link", "set", self.hosts[name].link, "up")
        return time.time()

    def start(self, name: str, argv: list[str], *, env: dict, log: Path, cwd: Path | None = None) -> subprocess.Popen:
        """Run a process on the host, its output appended to ``log``; in a session of its own."""
        with open(log, "ab") as sink:
            return subprocess.Popen(
                self.hosts[name].command(argv),
                env=env,
                cwd=cwd,
                stdout=sink,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def run(self, name: str, argv: list[str], *, env: dict | None = None, cwd: Path | None = None, timeout=120):
        """Run a command on the host to its end; raises with its output when it fails."""
        done = subprocess.run(
            self.hosts[name].command(argv), env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout
        )
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} on {name} failed ({done.returncode}):\n{done.stdout}{done.stderr}")
        return done


def _exit_on_sigterm(signum, frame):
    raise SystemExit(128 + signum)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clean", action="store_true", help="remove what an interrupted run left")
    args = parser.parse_args()
    if args.clean:
        if not teardown(quiet=False):
            print("nothing to remove")  # noqa: T201


if __name__ == "__main__":
    main()
