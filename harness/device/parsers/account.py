"""`dumpsys account`: the accounts registered on the device, per user.

Format (API 17+, multi-user): per user a `User UserInfo{<id>:<name>:<flags>}:` line, then,
indented, `Accounts: <n>` and exactly n lines `Account {name=<name>, type=<type>}`, then
other sections (`Active Sessions: 0`, `RegisteredServicesCache: ...`; API 24+ also an
`Accounts History` table) that are ignored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from harness.device.parsers.text import ShellOutputError, check_shell_failure, lines_of

COMMAND = "dumpsys account"
_USER = re.compile(r"^\s*User UserInfo\{(\d+):")
_COUNT = re.compile(r"^\s*Accounts: (\d+)\s*$")
_ACCOUNT = re.compile(r"^\s*Account \{name=(.*), type=([^,{}]*)\}\s*$")


@dataclass(frozen=True)
class Account:
    """One registered account.

    Attributes:
        name: the account name (often an e-mail address).
        type: the authenticator type, e.g. com.amazon.account, com.google.
        user_id: the Android user owning it; None when the dump has no user header.
    """

    name: str
    type: str
    user_id: int | None = None


def parse_dumpsys_account(text: str | bytes) -> tuple[Account, ...]:
    """Parse every user's accounts out of `dumpsys account`.

    Raises:
        ShellOutputError: no `Accounts: N` line, or fewer `Account {...}` lines than N.
    """
    check_shell_failure(COMMAND, text)
    lines = lines_of(text)
    accounts: list[Account] = []
    user: int | None = None
    seen_count = False
    i = 0
    while i < len(lines):
        m = _USER.match(lines[i])
        if m:
            user = int(m.group(1))
        m = _COUNT.match(lines[i])
        if m:
            seen_count = True
            n = int(m.group(1))
            block = lines[i + 1 : i + 1 + n]
            parsed = [_ACCOUNT.match(line) for line in block]
            if len(block) < n or not all(parsed):
                bad = next((b for b, p in zip(block, parsed, strict=True) if not p), "<end>")
                raise ShellOutputError(
                    COMMAND, f"`Accounts: {n}` but line {bad.strip()[:60]!r} is no account", text
                )
            accounts.extend(Account(p.group(1), p.group(2), user) for p in parsed)
            i += n
        i += 1
    if not seen_count:
        raise ShellOutputError(COMMAND, "no `Accounts: <n>` line", text)
    return tuple(accounts)
