"""Lexicon Hub client: the embedding-formats core (``client.core``) and the user's side
(HTTP API, cache, lockfile, injection, the ``hub`` CLI)."""

__version__ = "0.1.0"
