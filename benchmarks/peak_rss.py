"""Run a command and write its exit code, wall seconds, CPU seconds and peak RSS to a file.

``python benchmarks/peak_rss.py REPORT.json COMMAND [ARG...]``

A peak RSS read by ``wait4`` counts the image the command was forked from (it is mapped in
the child until ``exec``): forked from a large process (a benchmark harness holding earlier
runs' output, pytest late in a run), a 27 MB command reads as hundreds of MB. Forked from
this small interpreter instead, the peak is the command's own. Used by
``benchmarks/scaling.py`` and by the tests that check a command's memory.
"""

import json
import os
import sys
import time


def main() -> int:
    report, argv = sys.argv[1], sys.argv[2:]
    begin = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        try:
            os.execvp(argv[0], argv)
        finally:
            os._exit(127)
    _, status, usage = os.wait4(pid, 0)
    with open(report, "w") as f:
        json.dump({"exit": os.waitstatus_to_exitcode(status),
                   "seconds": time.perf_counter() - begin, "peak_rss_kib": usage.ru_maxrss,
                   "cpu_seconds": usage.ru_utime + usage.ru_stime}, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
