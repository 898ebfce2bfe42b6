"""amlwatch: streaming AML monitor for digital-collectible marketplaces."""
__version__ = "0.1.0"
