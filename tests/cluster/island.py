"""A network namespace with the loopback interface only, for the live cluster tests.

Ray 2.60's GCS, raylets and workers listen on every interface of their network namespace
whatever ``--node-ip-address`` says (measured with ``ss -ltnp``; docs/cluster.md). Giving each
node a loopback address therefore does not keep the test cluster off the machine's network.
Running the whole lab inside a namespace of its own whose only interface is ``lo`` does: there
"every interface" is the loopback. A holder process creates the namespace (``unshare``, an
unprivileged user namespace mapped to the caller) and brings ``lo`` up; every command of the
lab then runs through ``nsenter`` into it. Both tools are util-linux, on every Linux.

Where user namespaces are not allowed (``kernel.unprivileged_userns_clone=0``, some container
runtimes), :meth:`Island.open` returns ``None`` with the reason, and the lab runs on loopback
addresses in the host namespace, saying so.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

# Brings 'lo' up (SIOCGIFFLAGS / SIOCSIFFLAGS with IFF_UP; struct ifreq is 40 bytes), says so,
# then holds the namespace until its stdin closes.
_HOLDER = """
import fcntl, socket, struct, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
req = struct.pack("16sH22x", b"lo", 0)
flags = struct.unpack("16sH22x", fcntl.ioctl(s, 0x8913, req))[1]
fcntl.ioctl(s, 0x8914, struct.pack("16sH22x", b"lo", flags | 1))
print("lo up", flush=True)
sys.stdin.read()
"""


class Island:
    """A held loopback-only network namespace; :attr:`prefix` runs a command inside it."""

    def __init__(self, holder: subprocess.Popen[str]) -> None:
        self.holder = holder
        self.prefix = ["nsenter", f"--target={holder.pid}", "--user", "--net", "--preserve-credentials"]

    @classmethod
    def open(cls) -> tuple[Island | None, str]:
        """The island, or ``None`` and why it cannot be made here."""
        for tool in ("unshare", "nsenter"):
            if shutil.which(tool) is None:
                return None, f"'{tool}' (util-linux) is not installed"
        holder = subprocess.Popen(
            ["unshare", "--user", "--map-root-user", "--net", sys.executable, "-c", _HOLDER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert holder.stdout is not None
        if holder.stdout.readline().strip() != "lo up":
            holder.kill()
            err = (holder.communicate()[1] or "").strip().splitlines()
            return None, f"no user+network namespace here ({err[-1] if err else 'unshare failed'})"
        island = cls(holder)
        probe = subprocess.run([*island.prefix, "true"], capture_output=True, text=True)
        if probe.returncode != 0:
            island.close()
            return None, f"nsenter into the namespace failed ({probe.stderr.strip()[-200:]})"
        return island, ""

    def interfaces(self) -> list[str]:
        """The namespace's network interfaces (``/proc/<holder>/net/dev``, read from outside)."""
        lines = Path(f"/proc/{self.holder.pid}/net/dev").read_text().splitlines()[2:]
        return sorted(line.split(":", 1)[0].strip() for line in lines)

    def close(self) -> None:
        if self.holder.stdin is not None:
            self.holder.stdin.close()
        try:
            self.holder.wait(5)
        except subprocess.TimeoutExpired:
            self.holder.kill()
            self.holder.wait()
