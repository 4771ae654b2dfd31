"""`SandboxInfo`: how a client finds and trusts a running sandbox (the content of `sandbox.json`)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from provision.errors import ConfigurationError

INFO_FILE = "sandbox.json"


@dataclass(frozen=True)
class SandboxInfo:
    """Connection facts of one running sandbox.

    `url` is the base URL of every emulated API (ARM at `{url}/subscriptions/...`, Graph at `{url}/v1.0`,
    Entra ID at `{url}/{tenant_id}/...`); `ca_bundle` is the PEM file of the sandbox's own CA, which clients
    must trust (TLS verification stays on).
    """

    url: str
    ca_bundle: str
    tenant_id: str
    subscription_id: str
    client_id: str
    client_secret: str
    state_dir: str
    gcp_project: str = "sandbox-project"

    @property
    def authority(self) -> str:
        """The value for azure-identity's `authority=` (the sandbox plays login.microsoftonline.com)."""
        return self.url

    @property
    def graph_url(self) -> str:
        """Base URL of Microsoft Graph v1.0 in the sandbox."""
        return f"{self.url}/v1.0"

    def to_dict(self) -> dict[str, str]:
        return asdict(self)

    def to_json(self) -> str:
        """One line of JSON (what `provision sandbox serve` prints and writes to `sandbox.json`)."""
        return json.dumps(self.to_dict(), separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SandboxInfo:
        names = {f.name for f in fields(cls)}
        missing = sorted(n for n in names if n not in data and n != "gcp_project")
        if missing:
            raise ConfigurationError(f"sandbox info lacks {', '.join(missing)}")
        return cls(**{k: str(v) for k, v in data.items() if k in names})

    @classmethod
    def load(cls, path: str | Path) -> SandboxInfo:
        """Read `sandbox.json` (or a state directory holding one)."""
        p = Path(path)
        if p.is_dir():
            p = p / INFO_FILE
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigurationError(
                f"no sandbox info at {p}", hint="start one with `provision sandbox serve --state DIR`"
            ) from None
        except (OSError, ValueError) as exc:
            raise ConfigurationError(f"cannot read sandbox info {p}: {exc}") from None
        if not isinstance(data, dict):
            raise ConfigurationError(f"sandbox info {p} is not a JSON object")
        return cls.from_dict(data)
