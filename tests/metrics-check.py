#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
# The Prometheus side of test-metrics: Debian's python3-prometheus-client parses `hugepagectl metrics`, and the
# real prometheus-node-exporter serves a textfile directory on loopback.
#
#   metrics-check.py parse FILE   parse FILE; check every family is hugepaged_*, has HELP and a TYPE, and every
#                                 counter's sample ends in _total; print each sample as
#                                 name{label="value",...} value  (labels sorted), one a line
#   metrics-check.py scrape DIR   start node_exporter with DIR as its textfile directory on 127.0.0.1 (a free
#                                 port), scrape /metrics (a bounded number of tries), parse it, and print its
#                                 hugepaged_* samples as above, and node_textfile_scrape_error's
#
# Exit status 0, 1 on a failed check (said on stderr), 77 when node_exporter is not installed.
import socket
import subprocess
import sys
import time
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

NODE_EXPORTER = "/usr/bin/prometheus-node-exporter"


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def sample_line(s):
    labels = ",".join('%s="%s"' % (k, v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n"))
                      for k, v in sorted(s.labels.items()))
    value = int(s.value) if s.value == int(s.value) else s.value
    return "%s{%s} %s" % (s.name, labels, value)


def parse(path):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    families = list(text_string_to_metric_families(text))
    if not families:
        fail("no metric families in " + path)
    for fam in families:
        if not fam.name.startswith("hugepaged_"):
            fail("family %s does not start with hugepaged_" % fam.name)
        if not fam.documentation:
            fail("family %s has no HELP" % fam.name)
        if fam.type not in ("gauge", "counter"):
            fail("family %s has TYPE %s" % (fam.name, fam.type))
        for s in fam.samples:
            if fam.type == "counter" and not s.name.endswith("_total"):
                fail("counter sample %s does not end in _total" % s.name)
            print(sample_line(s))


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scrape(directory):
    try:
        open(NODE_EXPORTER, "rb").close()
    except OSError:
        print("%s is not installed: skipping" % NODE_EXPORTER, file=sys.stderr)
        sys.exit(77)
    port = free_port()
    proc = subprocess.Popen([NODE_EXPORTER, "--web.listen-address=127.0.0.1:%d" % port,
                             "--collector.disable-defaults", "--collector.textfile",
                             "--collector.textfile.directory=" + directory],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        body = None
        # At most 50 requests, 0.1 s apart: node_exporter listens within a second here.
        for _ in range(50):
            if proc.poll() is not None:
                fail("node_exporter exited with %d: %s" % (proc.returncode, proc.stderr.read().decode()))
            try:
                with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=5) as r:
                    body = r.read().decode()
                break
            except OSError:
                time.sleep(0.1)
        if body is None:
            fail("node_exporter did not answer on 127.0.0.1:%d" % port)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    for fam in text_string_to_metric_families(body):
        if fam.name.startswith("hugepaged_") or fam.name == "node_textfile_scrape_error":
            for s in fam.samples:
                print(sample_line(s))


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("parse", "scrape"):
        print("usage: metrics-check.py parse FILE | scrape DIR", file=sys.stderr)
        sys.exit(2)
    if sys.argv[1] == "parse":
        parse(sys.argv[2])
    else:
        scrape(sys.argv[2])


main()
