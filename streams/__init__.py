"""Faust app, topics, agents and codecs."""
