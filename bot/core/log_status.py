"""Which log statuses mean an error or a warning: one table for the log search and the analysis.

Datadog's status remapper folds whatever a log says into syslog's levels (``emerg``/``emergency``,
``alert``, ``critical``, ``error``, ``warn``/``warning``, ``notice``, ``info``, ``debug``, ``ok``);
other sources still write ``fatal``. The connector searches for every error-class and
warning-class status here, and the analysis counts the error-class ones as errors, so a log at
``critical`` or ``emergency`` is neither missed by the search nor read as a warning.
"""

from __future__ import annotations

ERROR_STATUSES = frozenset({"emergency", "emerg", "alert", "critical", "error", "fatal"})
WARNING_STATUSES = frozenset({"warn", "warning"})
