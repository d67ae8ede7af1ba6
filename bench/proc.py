"""Server CPU time from /proc: utime + stime of a process and its forked workers."""

import os
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str]:
    # The command name (field 2) may hold spaces and parentheses: split after its last ')'.
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rindex(")") + 2 :].split()


def tree(pid: int) -> list[int]:
    """The process and its children (--workers forks them), read once the workers are up."""
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int(_stat_fields(int(entry.name))[1]) == pid:
                    children.append(int(entry.name))
            except (FileNotFoundError, ProcessLookupError, ValueError):
                continue
    return [pid, *children]


def cpu_seconds(pids: list[int]) -> float:
    """utime + stime (fields 14 and 15 of /proc/<pid>/stat), summed over `pids`."""
    total = 0
    for pid in pids:
        fields = _stat_fields(pid)
        total += int(fields[11]) + int(fields[12])
    return total / CLOCK_TICKS
