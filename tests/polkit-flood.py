#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
# Test helper for test-polkit: one bus connection that sends N Reserve calls to org.hugepaged1 without waiting
# for them, then a Peer.Ping, whose answer proves the daemon has taken in every Reserve before it.
# Prints "ready" when the Ping is answered, and one line "reply NAME" or "error ERROR-NAME" for every
# Reserve answered; with --hold it then stays connected until killed, else it exits (and disconnects) as soon
# as SECONDS have passed. Run as the unprivileged caller, with /usr/bin/python3 (it needs dbus-python).
import sys

import dbus
from dbus.mainloop.glib import DBusGMainLoop
from gi.repository import GLib

PS2M = 2 * 1024 * 1024


def main():
    args = sys.argv[1:]
    hold = '--hold' in args
    args = [a for a in args if a != '--hold']
    n = int(args[0])
    seconds = float(args[1]) if len(args) > 1 else 0.0
    prefix = args[2] if len(args) > 2 else 'flood'

    DBusGMainLoop(set_as_default=True)
    bus = dbus.SystemBus()
    obj = bus.get_object('org.hugepaged1', '/org/hugepaged1', introspect=False)
    manager = dbus.Interface(obj, 'org.hugepaged1.Manager')
    peer = dbus.Interface(obj, 'org.freedesktop.DBus.Peer')
    loop = GLib.MainLoop()

    def out(line):
        print(line, flush=True)

    for i in range(n):
        name = '%s-%d' % (prefix, i)
        manager.Reserve(name, dbus.UInt64(0), dbus.UInt64(PS2M), dbus.Dictionary({}, signature='sv'),
                        reply_handler=lambda path, name=name: out('reply ' + name),
                        error_handler=lambda e: out('error ' + e.get_dbus_name()),
                        timeout=120)

    def pong(*_args):
        out('ready')
        if not hold:
            GLib.timeout_add(int(seconds * 1000), loop.quit)

    peer.Ping(reply_handler=pong, error_handler=lambda e: (out('ping-error ' + e.get_dbus_name()), loop.quit()),
              timeout=120)
    loop.run()


if __name__ == '__main__':
    main()
