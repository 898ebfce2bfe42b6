"""Pure detection logic: no I/O, no Kafka."""
