"""Podium's policy file: its schema, defaults and validating loader (``policy.py``), the
default thresholds (``defaults.py``) and the transition targets (``targets.py``).

The bottom layer: it imports nothing from Podium, and everything above reads the policy
through it (the service, the ``podium`` command, and the command-line edges of
``model_tests``).
"""
