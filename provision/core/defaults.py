"""Defaults every target and command shares (a module of constants: the CLI imports it at start-up)."""

#: operations in flight by default. The smallest bucket a target meets is ARM's writes (200 at once, refilled at 10
#: per second): 32 operations, each with one request in flight, cannot empty it in a burst even with a second run in
#: the same subscription, and a longer plan is paced by the client-side bucket (`provision.core.limits`) and the
#: gate's window rather than by this number. Above 32 the CLI's own CPU bounds on 2 cores (docs/performance.md).
DEFAULT_CONCURRENCY = 32
