"""A/B experiments between similarity models, in the service.

``definitions`` reads and validates the experiments file (TOML), ``assignment`` maps a user to an
arm by a stable hash, ``live`` keeps the current definitions in each API process (reloaded when
the file changes), ``exposures`` writes what was shown and the feedback to DynamoDB off the
request path, and ``report`` turns them into per-variant figures and a decision.
"""
