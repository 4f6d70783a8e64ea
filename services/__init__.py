"""The aiguillage services: intake (mail, scan, phone), router, SLA watch, shared wiring."""
