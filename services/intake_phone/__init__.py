"""The intake_phone service."""
