"""The two secrets of the target, read from the environment variables the plan names, only when a command needs
them: the admin password (apply renders its hash; up, share and verify log in with it) and the share signing
key (up hands it to Orthanc through the environment; share and verify sign with it). Neither is ever printed,
logged or written to a file; errors name the variable and where the plan names it."""

from __future__ import annotations

import os

from provision.core.target import PlanView
from provision.errors import ConfigurationError
from provision.orthanc import sharetoken
from provision.orthanc.plan import OrthancSection
from provision.plan import locate

MIN_PASSWORD_LENGTH = 12
GENERATE = "python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"


def admin_password(plan: PlanView, section: OrthancSection) -> str:
    name = section.admin.password_env
    value = os.environ.get(name, "")
    where = locate(plan.source, ("orthanc", "admin", "password_env"))
    if not value:
        raise ConfigurationError(f"{where}: the environment variable {name} (the Orthanc admin password) is not set",
                                 hint=f"export {name}=\"$({GENERATE})\"; provision stores only a hash of it")
    if len(value) < MIN_PASSWORD_LENGTH:
        raise ConfigurationError(f"{where}: {name} holds a password of {len(value)} characters; at least "
                                 f"{MIN_PASSWORD_LENGTH} are needed", hint=f"generate one: {GENERATE}")
    return value


def signing_key(plan: PlanView, section: OrthancSection) -> bytes:
    name = section.shares.signing_key_env
    value = os.environ.get(name, "").encode("utf-8")
    where = locate(plan.source, ("orthanc", "shares", "signing_key_env"))
    if not value:
        raise ConfigurationError(f"{where}: the environment variable {name} (the share signing key) is not set",
                                 hint=f"export {name}=\"$({GENERATE})\" (the same value wherever Orthanc runs)")
    if len(value) < sharetoken.MIN_KEY_BYTES:
        raise ConfigurationError(f"{where}: {name} holds {len(value)} bytes; a signing key needs at least "
                                 f"{sharetoken.MIN_KEY_BYTES}", hint=f"generate one: {GENERATE}")
    return value
