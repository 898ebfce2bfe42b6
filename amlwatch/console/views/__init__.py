"""The console's pages and JSON API, one module per area; `amlwatch.console.app` routes them."""
