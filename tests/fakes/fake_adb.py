#!/usr/bin/env python3
"""TEST DOUBLE for the adb client (not adb): it emulates a device as a sandbox folder on this machine.

- ``devices -l`` lists $FAKE_ADB_DEVICES ("serial state info" entries separated by '|');
- ``shell CMD`` runs CMD with a real POSIX ``sh -c`` (as adbd does on a phone), with /data/local/tmp mapped into
  $FAKE_ADB_ROOT; ``getprop NAME`` answers from $FAKE_ADB_PROPS ("name=value" entries separated by '|');
- ``push``/``pull`` copy files in and out of the sandbox.
Every call is appended to $FAKE_ADB_LOG as JSON. What it does not prove: adb's wire protocol, Android's toybox shell
(edgeprune relies only on POSIX quoting, which both share), a real phone's benchmark_model, GPU/NNAPI drivers or
simpleperf.
"""

import json
import os
import shutil
import subprocess
import sys

ROOT = os.environ["FAKE_ADB_ROOT"]


def device_path(path: str) -> str:
    return path.replace("/data/local/tmp", ROOT + "/data/local/tmp") if path.startswith("/data/local/tmp") else path


def main(argv):
    with open(os.environ["FAKE_ADB_LOG"], "a") as log:
        log.write(json.dumps(argv) + "\n")
    serial = None
    if argv[:1] == ["-s"]:
        serial, argv = argv[1], argv[2:]
    devices = [d.split(None, 2) for d in os.environ.get("FAKE_ADB_DEVICES", "").split("|") if d.strip()]
    if argv[:1] == ["devices"]:
        print("List of devices attached")
        for d in devices:
            print("\t".join(d[:2]) + ("  " + d[2] if len(d) > 2 else ""))
        print()
        return 0
    ready = [d for d in devices if d[1] == "device"]
    if serial is None and not devices:
        print("error: no devices/emulators found", file=sys.stderr)
        return 1
    if serial is not None and serial not in [d[0] for d in devices]:
        print(f"error: device '{serial}' not found", file=sys.stderr)
        return 1
    if not ready:
        print("error: device unauthorized.", file=sys.stderr)
        return 1
    if argv[0] == "push":
        target = device_path(argv[2])
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copy(argv[1], target)
        print(f"{argv[1]}: 1 file pushed.")
        return 0
    if argv[0] == "pull":
        shutil.copy(device_path(argv[1]), argv[2])
        return 0
    if argv[0] == "shell":
        command = " ".join(argv[1:])
        if command.startswith("getprop "):
            props = dict(p.split("=", 1) for p in os.environ.get("FAKE_ADB_PROPS", "").split("|") if "=" in p)
            print(props.get(command.split(" ", 1)[1].strip("'"), ""))
            return 0
        mapped = command.replace("/data/local/tmp", ROOT + "/data/local/tmp")
        mapped = mapped.replace("/sys/devices/system/cpu", ROOT + "/sys/devices/system/cpu")
        env = {**os.environ, "PATH": os.environ.get("FAKE_ADB_DEVICE_PATH", "") + ":" + os.environ["PATH"]}
        proc = subprocess.run(["sh", "-c", mapped], cwd=ROOT, env=env, capture_output=True, text=True)
        sys.stdout.write(proc.stdout)
        sys.stderr.write(proc.stderr)
        return proc.returncode
    print(f"fake adb: unsupported command {argv}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
