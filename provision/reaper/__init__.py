"""Finding and deleting environments that outlived their pull request, whatever the cloud.

Pure parts (durations, grouping by ownership marks, selection by age and env prefix) are in `duration` and
`model`; `run` deletes environments concurrently with a bound and reports per environment. The clouds plug in
through `run.Inventory` (`provision.azure.inventory`, `provision.gcp.inventory`); `provision gc` is the command.
"""

from provision.reaper.duration import format_age, parse_duration
from provision.reaper.model import Environment, EnvironmentKey, Found, Selection, group, parse_created, select
from provision.reaper.run import EnvironmentReport, Inventory, Retrier, Teardown, is_throttling, reap

__all__ = [
    "Environment",
    "EnvironmentKey",
    "EnvironmentReport",
    "Found",
    "Inventory",
    "Retrier",
    "Selection",
    "Teardown",
    "format_age",
    "group",
    "is_throttling",
    "parse_created",
    "parse_duration",
    "reap",
    "select",
]
