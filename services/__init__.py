"""The aiguillage services: intake (mail, scan, phone), router, SLA watch, and their shared wiring."""
