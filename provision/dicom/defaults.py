"""The upload's defaults, in a module light enough for a target's command declarations to import at start-up.

`DEFAULT_CONCURRENCY`: STOW requests in flight at once. bench/upload_bench.py (2,000 small instances into the
sandbox, whose Orthanc shares the machine's two cores) measures 1, 8, 32 and 64: most of the gain is there
at 8, and more only adds contention on a small machine. Cloud services scale further; see docs/dicom-data.md.
"""

DEFAULT_CONCURRENCY = 8
#: at most this many instances per STOW request ...
BATCH_INSTANCES = 10
#: ... and at most this many bytes (a larger single file goes alone)
BATCH_BYTES = 16 << 20
#: at most this much file data read or being sent at once, whatever the concurrency
IN_FLIGHT_BYTES = 256 << 20
MAX_CONCURRENCY = 64
