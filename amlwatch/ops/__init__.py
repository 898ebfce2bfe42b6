"""Operations: worker metrics and health endpoints, structured logs, the `config` command."""
