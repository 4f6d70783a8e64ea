"""What every service shares: settings, logging, Kafka wiring, DLQ, store."""
