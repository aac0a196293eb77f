"""A shell wrapper for query commands that fail the whole call for one id they do not know.

``qstat ID...`` (PBS) and ``bjobs ID...`` (LSF) print what they know of every other job but
exit non-zero as soon as one listed job is unknown (its history purged, or cleaned after LSF's
``CLEAN_PERIOD``). The batch executor takes a non-zero exit for an unreachable machine, so one
forgotten job would stop every poll of the machine. ``tolerant_argv`` runs the command under
``sh`` and exits 0 when every line it wrote to stderr matches ``ignorable``; any other message
(server down, bad option) keeps the command's own exit status and is passed on.

>>> argv = tolerant_argv(["qstat", "-f", "12"], "Unknown Job Id")
>>> argv[:2], argv[3:]
(['sh', '-c'], ['sh', 'Unknown Job Id', 'qstat', '-f', '12'])
>>> import subprocess
>>> run = lambda script: subprocess.run(tolerant_argv(["sh", "-c", script], "not found"),
...                                     capture_output=True, text=True)
>>> done = run("echo 1; echo 'Job <2> is not found' >&2; exit 255")
>>> done.returncode, done.stdout
(0, '1\\n')
>>> done = run("echo 1; echo 'LSF is down' >&2; exit 255")
>>> done.returncode, done.stderr
(255, 'LSF is down\\n')
>>> run("exit 3").returncode
3
>>> "\\n" in argv[2]  # one line: a csh login shell (over SSH) takes it too
False
"""

from __future__ import annotations

#: $1 is the pattern, the rest the command. The command's stdout goes straight through (fd 3);
#: its stderr is captured to be checked. One line: over SSH the argv reaches the user's login
#: shell, and csh-family shells refuse a newline inside quotes.
_TOLERANT = " ".join((
    "pattern=$1; shift; exec 3>&1;",
    'err=$("$@" 2>&1 1>&3 3>&-); rc=$?; exec 3>&-;',
    'if [ "$rc" -ne 0 ]; then',
    "other=$(printf '%s\\n' \"$err\" | grep -Ev -e \"$pattern\" -e '^[[:space:]]*$');",
    'if [ -n "$other" ] || [ -z "$err" ]; then',
    "printf '%s\\n' \"$err\" >&2; exit \"$rc\";",
    "fi;",
    "fi;",
    "[ -z \"$err\" ] || printf '%s\\n' \"$err\" >&2; exit 0",
))


def tolerant_argv(argv: list[str], ignorable: str) -> list[str]:
    """``argv`` run so that stderr lines matching the extended regex ``ignorable`` (and only
    those) do not make it fail; arguments are passed as arguments, never parsed by the shell."""
    return ["sh", "-c", _TOLERANT, "sh", ignorable, *argv]
