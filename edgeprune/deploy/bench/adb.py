"""A thin, safe wrapper of the ``adb`` client: device selection, push/pull, and shell commands.

Safety rules: local commands are argument lists (no local shell); a device shell command is built from a list of
arguments, each quoted with ``shlex.quote``, so a path with spaces, quotes or ``;`` is one argument on the device and
never code; every call has a timeout.
"""

import os
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from edgeprune.core.errors import EdgepruneError


class DeviceError(EdgepruneError):
    """adb is missing, no usable device is attached, or a device command failed or hung."""


@dataclass(frozen=True)
class Device:
    serial: str
    state: str
    info: str = ""


def find_adb(explicit: str | None = None) -> str:
    candidates = [explicit, os.environ.get("ADB"), shutil.which("adb")]
    for home in (os.environ.get("ANDROID_HOME"), os.environ.get("ANDROID_SDK_ROOT")):
        if home:
            candidates.append(str(Path(home) / "platform-tools" / "adb"))
    for c in candidates:
        if c and Path(c).is_file() and os.access(c, os.X_OK):
            return c
    raise DeviceError("adb was not found: install it (Debian/Ubuntu: apt-get install adb; otherwise Android SDK "
                      "platform-tools), or give its path with --adb or $ADB")


def shell_command(argv: list[str]) -> str:
    """One device shell command line from arguments, every one quoted."""
    return " ".join(shlex.quote(str(a)) for a in argv)


class Adb:
    def __init__(self, adb_path: str | None = None, serial: str | None = None, timeout_s: float = 60.0):
        self.path = find_adb(adb_path)
        self.serial = serial
        self.timeout_s = timeout_s

    def run(self, *args: str, timeout_s: float | None = None, check: bool = True) -> subprocess.CompletedProcess:
        cmd = [self.path] + (["-s", self.serial] if self.serial else []) + [str(a) for a in args]
        limit = timeout_s or self.timeout_s
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=limit, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise DeviceError(f"'adb {' '.join(args[:2])}' did not answer within {limit:.0f} s (device hung or "
                              "disconnected?)") from None
        if check and proc.returncode != 0:
            message = (proc.stderr.strip() or proc.stdout.strip()).splitlines()
            raise DeviceError(f"'adb {' '.join(args[:1])}' failed: {message[-1] if message else proc.returncode}")
        return proc

    def devices(self) -> list[Device]:
        out = self.run("devices", "-l", timeout_s=30).stdout
        devices = []
        for line in out.splitlines():
            line = line.strip()
            if not line or line.startswith(("List of devices", "*")):
                continue
            parts = line.split(None, 2)
            if len(parts) >= 2:
                devices.append(Device(parts[0], parts[1], parts[2] if len(parts) > 2 else ""))
        return devices

    def select(self, serial: str | None = None) -> Device:
        """The device to use (by serial, or the only one), or a DeviceError that says what to do."""
        devices = self.devices()
        if serial:
            match = [d for d in devices if d.serial == serial]
            if not match:
                known = ", ".join(d.serial for d in devices) or "none"
                raise DeviceError(f"device '{serial}' is not attached (attached: {known})")
            device = match[0]
        else:
            if not devices:
                raise DeviceError("no Android device or emulator is attached: connect one with USB debugging on "
                                  "(check with 'adb devices')")
            usable = [d for d in devices if d.state == "device"]
            if len(devices) > 1 and len(usable) != 1:
                raise DeviceError(f"{len(devices)} devices are attached ({', '.join(d.serial for d in devices)}): "
                                  "choose one with --device SERIAL")
            device = usable[0] if usable else devices[0]
        if device.state == "unauthorized":
            raise DeviceError(f"device '{device.serial}' is unauthorized: accept the USB debugging prompt on the "
                              "phone, then try again")
        if device.state == "offline":
            raise DeviceError(f"device '{device.serial}' is offline: reconnect it or restart adb (adb kill-server)")
        if device.state != "device":
            raise DeviceError(f"device '{device.serial}' is in state '{device.state}', not ready for commands")
        self.serial = device.serial
        return device

    def shell(self, argv: list[str], timeout_s: float | None = None, check: bool = True) -> subprocess.CompletedProcess:
        return self.run("shell", shell_command(argv), timeout_s=timeout_s, check=check)

    def getprop(self, name: str) -> str:
        return self.shell(["getprop", name]).stdout.strip()

    def push(self, local, remote: str, timeout_s: float | None = None) -> None:
        self.run("push", str(local), remote, timeout_s=timeout_s or max(self.timeout_s, 300))

    def pull(self, remote: str, local) -> None:
        self.run("pull", remote, str(local))
