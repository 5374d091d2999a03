"""Who is acting: identities (``slack:U123``, ``cli:alice``, ``api:ci``, ``ui:alice``) and
the people the policy maps them to. Decisions count people, never identities."""

from __future__ import annotations

import os
import pwd

KINDS = ("slack", "cli", "api", "ui", "mlflow", "gitlab")


def os_user() -> str:
    """The operating-system account running this process (not ``LOGNAME``, which anyone
    can set)."""
    return pwd.getpwuid(os.getuid()).pw_name


def cli_actor() -> str:
    return f"cli:{os_user()}"


def person(policy, identity: str | None) -> str | None:
    """The person behind ``identity``: the policy's ``people`` entry that lists it; else,
    for a bare name or an identity no person lists, the identity itself (so it is still
    one person, and never two)."""
    if not identity:
        return None
    found = policy.person_for(identity)
    if found is not None:
        return found
    if ":" not in identity:  # a bare user name (mlflow.user, an old requested_by tag)
        if identity in policy.people:
            return identity
        for kind in KINDS:
            if (found := policy.person_for(f"{kind}:{identity}")) is not None:
                return found
    return identity
