"""The running code's version, stamped on dead letters and logs."""

from importlib.metadata import PackageNotFoundError, version

__all__ = ["SERVICE_VERSION"]

try:
    SERVICE_VERSION = version("aiguillage")
except PackageNotFoundError:  # running from a source tree that was not installed
    SERVICE_VERSION = "0.0.0+source"
