"""What every layer shares: settings, identities, the secret scrubber, token strength,
text tables."""
