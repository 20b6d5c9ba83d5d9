"""The exit statuses of `ratecard`, one table for scripts (the README shows it; tests/test_exit_codes.py
checks every row against the commands).

| status | meaning |
|---|---|
| 0 | done; for `status`: the account may use the service now |
| 1 | bad input: rules, usage, ledger state or a refused operation (the message says which) |
| 2 | a mistake on the command line: unknown option, missing argument, unparsable value |
| 3 | `status`: the service is suspended (arrears); `settle`: some accounts were not settled, each named on standard error |
| 4 | `status` only: the service is not activated for the account |
| 130 | interrupted (Ctrl-C) |
"""

from __future__ import annotations

OK = 0
BAD_INPUT = 1
COMMAND_LINE = 2  # argparse's own status for a usage error
SUSPENDED = 3
NOT_ALL_SETTLED = 3  # `settle`: the others were settled (a monthly job can tell "look at these")
NOT_ACTIVATED = 4
INTERRUPTED = 130

STATUS_EXIT = {"active": OK, "suspended": SUSPENDED, "not-activated": NOT_ACTIVATED}
