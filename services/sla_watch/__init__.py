"""The sla_watch service."""
