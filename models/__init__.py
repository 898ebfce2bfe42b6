"""Feature extraction, training and compiled model artifacts."""
