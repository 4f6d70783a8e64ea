"""The intake_scan service."""
