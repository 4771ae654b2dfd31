"""Plan files: YAML models (pydantic v2), loading with `FILE:LINE:COL` errors, `${VAR}`, JSON Schema.

    from provision.plan import load_plan
    plan = load_plan("playbooks/azure-ohif.yaml")
    plan.section("azure")    # the target's section, defaults already resolved from ohif.viewer_url

Each target's section model lives in its package (`provision.azure.plan`, ...) and derives from
`provision.plan.base.Section`. Reusable value rules (for CLI flags) live in `provision.plan.validators`, which
imports no pydantic: the names below load on first use (PEP 562), so a flag check stays cheap at start-up.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from provision.plan.base import OhifSection, Section
    from provision.plan.loader import load_plan, locate, parse_plan, plan_json_schema
    from provision.plan.models import Plan, plan_model

_MODULE_OF = {
    "OhifSection": "provision.plan.base",
    "Section": "provision.plan.base",
    "load_plan": "provision.plan.loader",
    "locate": "provision.plan.loader",
    "parse_plan": "provision.plan.loader",
    "plan_json_schema": "provision.plan.loader",
    "Plan": "provision.plan.models",
    "plan_model": "provision.plan.models",
}

__all__ = [
    "OhifSection",
    "Plan",
    "Section",
    "load_plan",
    "locate",
    "parse_plan",
    "plan_json_schema",
    "plan_model",
]


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
