#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
# Minimal QMP client for test-qemu-numa: qmp.py SOCKET COMMAND-JSON...
# Runs each command in order and prints its reply; exits 1 on the first error reply.
import json
import socket
import sys


def main():
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(60)
    sock.connect(sys.argv[1])
    stream = sock.makefile("rw")

    def reply():
        while True:
            line = stream.readline()
            if not line:
                raise SystemExit("qmp: connection closed")
            msg = json.loads(line)
            if "event" in msg:
                print(f"qmp event: {json.dumps(msg)}")
                continue
            return msg

    def run(cmd):
        stream.write(json.dumps(cmd) + "\n")
        stream.flush()
        msg = reply()
        print(f"qmp {cmd['execute']}: {json.dumps(msg)}")
        if "error" in msg:
            raise SystemExit(1)

    greeting = reply()
    if "QMP" not in greeting:
        raise SystemExit(f"qmp: unexpected greeting {greeting}")
    run({"execute": "qmp_capabilities"})
    for arg in sys.argv[2:]:
        run(json.loads(arg))


if __name__ == "__main__":
    main()
