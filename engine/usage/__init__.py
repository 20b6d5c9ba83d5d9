"""Usage in: call records and aggregated usage, read by a query compiled from the rules.

Two kinds of usage file, each CSV, JSON Lines (plain or gzip-compressed) or Parquet:

- aggregated usage: ``account, period (YYYY-MM), api, calls[, outcome]``;
- call records: ``request_id, account, api, timestamp[, outcome | error_code]``, one call per row;
  the timestamp is ISO 8601 with a UTC offset, and it falls in the period of its local date in the
  time zone of the rules' settlement policy.

Outcomes: an ``outcome`` column holds ``success`` or an error code, and an empty outcome is
unknown (the rules' ``unknown_outcome`` decides). An ``error_code`` column holds the error code of a
failed call, and an empty one means the call succeeded: that is how call logs record success.
When a row has both, a non-empty outcome wins. Extra columns (or JSON keys) are ignored.

See `ratecard.usage.reader` for how files are read, `ratecard.usage.compile` for the query.
"""

from .checks import MAX_CALLS
from .files import AGGREGATED, CALLS, FORMATS, KINDS, STDIN_NAME
from .reader import ENGINES, UsageReader, read_usage
from .records import REJECTS_HEADER, AccountUsage, Reconciliation, Rejected, RejectsWriter, write_rejects
from ..rating import UsageItem

__all__ = ["AGGREGATED", "CALLS", "FORMATS", "KINDS", "STDIN_NAME", "MAX_CALLS", "ENGINES", "UsageReader",
           "read_usage", "REJECTS_HEADER", "AccountUsage", "Reconciliation", "Rejected", "RejectsWriter",
           "write_rejects", "UsageItem"]
