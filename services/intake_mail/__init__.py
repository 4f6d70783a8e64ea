"""The intake_mail service."""
