"""intake_scan errors: one base, named subclasses (procedure 4.3: no letter is dropped).

Bad input is not an error here: a letter or batch that cannot be read is a
``Rejection`` value that goes to quarantine and the DLQ. These exceptions are
for the service's environment (folders, OCR engine) and for crashes of the
reader processes, which the batch runner retries.
"""

from __future__ import annotations

__all__ = [
    "InboxUnusable",
    "InstanceIdInUse",
    "OcrUnavailable",
    "ReaderCrashed",
    "ScanError",
]


class ScanError(Exception):
    """Base of intake_scan's own errors."""


class InboxUnusable(ScanError):
    """The inbox, work, archive or quarantine folders cannot be used as configured."""


class InstanceIdInUse(ScanError):
    """Another live process holds this instance's working folder."""


class OcrUnavailable(ScanError):
    """tesseract or its language data is missing: nothing could be read."""


class ReaderCrashed(ScanError):
    """A reader process died while reading a letter (the pool was rebuilt)."""
