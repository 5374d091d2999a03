"""Leased job queue, worker loop and periodic triggers."""
