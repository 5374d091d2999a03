"""Model-quality checks and the champion comparison (built with the checks issue)."""
