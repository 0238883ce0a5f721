"""The twin's everyday userland: toybox on API 23+, toolbox with its gaps before.

Which command exists at which level (`when=` of each `@command`):
- Android 4.2.2 (API 17) toolbox (AOSP system/core/toolbox/Android.mk, jb-mr1): ls mount cat ps
  kill ln insmod rmmod lsmod ifconfig rm mkdir rmdir reboot getevent sendevent date wipe sync
  umount start stop notify cmp dmesg route hd dd df getprop setprop watchprops log sleep renice
  printenv smd chmod chown newfs_msdos netstat ioctl mv schedtop top iftop id uptime vmstat
  nandread ionice touch lsof du md5 clear and the SELinux tools. So on API 17 there is no cp,
  grep, head, tail, wc, sed, awk, find, stat, uname, tr, cut, sort, uniq, tee, xargs, basename,
  dirname, seq, printf, expr, env, readlink, pidof, which, yes: each answers
  `/system/bin/sh: <cmd>: not found` (127). mksh builtins (echo, test/[, pwd, read, ...) exist.
- cp, grep and readlink joined toolbox after 4.2 (NetBSD imports; the twin gives them from API 18,
  an estimate: no 4.3 device was checked).
- toybox arrived with Android 6.0 (API 23): everything above except awk, which Android ships
  (one-true-awk) from 9.0 (API 28).
Output shapes follow toybox (e.g. `wc -l` with one count prints no padding; `stat -c`); the
awk here is a subset: `-F`, `-v`, BEGIN/END, `/re/` and expression patterns, `print`,
`printf`, `if/else`, `for`, `while`, `next`, `$N`, `NF`, `NR`, `FS`/`OFS`, variables,
`+ - * / %`, comparisons, `~`, string concatenation, `+=`, `++`, `length substr index toupper
tolower int sprintf`. Anything outside it answers `awk: syntax error` (status 2).

Modules by family: files (cat cp mv rm ln find stat du df, and toybox's own echo true
false pwd test), text (grep head tail wc tr cut sort uniq tee seq yes), printf (printf,
expr), system (env printenv xargs pidof uname which), sed, awk (awkgrammar parses); toolkit
holds what they share (option parsing, reading files, API-level predicates).
"""

from __future__ import annotations

# each module registers its commands on import (no two register the same name)
from harness.twin.userland import awk, files, printf, sed, system, text  # noqa: I001
from harness.twin.userland.printf import printf_format

__all__ = ["awk", "files", "printf", "printf_format", "sed", "system", "text"]
