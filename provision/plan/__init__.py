"""Plan files: YAML models (pydantic v2), loading with `FILE:LINE:COL` errors, `${VAR}`, JSON Schema.

    from provision.plan import load_plan
    plan = load_plan("playbooks/azure-ohif.yaml")
    plan.azure.dicom.cors.origins    # defaults already resolved from ohif.viewer_url

Reusable value rules (for CLI flags) live in `provision.plan.validators`.
"""

from provision.plan.loader import load_plan, parse_plan, plan_json_schema
from provision.plan.models import (
    AZURE_CLOUDS,
    AzureAccess,
    AzureApp,
    AzureCloudEndpoints,
    AzureCors,
    AzureDicom,
    AzureQueryTag,
    AzureResourceGroup,
    AzureSection,
    AzureWorkspace,
    GcpAccess,
    GcpDataset,
    GcpDicomStore,
    GcpNotification,
    GcpSection,
    OhifSection,
    Plan,
)

__all__ = [
    "AZURE_CLOUDS",
    "AzureAccess",
    "AzureApp",
    "AzureCloudEndpoints",
    "AzureCors",
    "AzureDicom",
    "AzureQueryTag",
    "AzureResourceGroup",
    "AzureSection",
    "AzureWorkspace",
    "GcpAccess",
    "GcpDataset",
    "GcpDicomStore",
    "GcpNotification",
    "GcpSection",
    "OhifSection",
    "Plan",
    "load_plan",
    "parse_plan",
    "plan_json_schema",
]
