"""What every plan section is built from: the model base, value rules as `Annotated` metadata, located
cross-field problems, and the `ohif:` section (which every target reads).

Every model forbids unknown keys and is frozen. A target's section (`provision.azure.plan.AzureSection`, ...)
derives from `Section`; `Section.resolved` fills defaults that depend on the rest of the plan.

Cross-field problems are raised as one `PydanticCustomError` of type `plan_rules` whose context carries
`problems`: a list of `(relative location, message)` pairs; the loader turns each into its own located line.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    ValidationInfo,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, PydanticCustomError, core_schema

from provision.plan import validators as v

__all__ = [
    "PLAN_DIR",
    "CorsOrigin",
    "DataSourceName",
    "Email",
    "EnvName",
    "Guid",
    "HttpMethod",
    "HttpsUrl",
    "Loc",
    "LocalPath",
    "Model",
    "OhifSection",
    "PlanName",
    "RedirectUri",
    "Rule",
    "Section",
    "ViewerUrl",
    "duplicates",
    "fail",
    "resolve_path",
]

Loc = tuple[str | int, ...]


def fail(problems: Iterable[tuple[Loc, str]]) -> None:
    """Raise the located cross-field problems collected by a model validator, if any."""
    problems = list(problems)
    if problems:
        raise PydanticCustomError(
            "plan_rules",
            "{summary}",
            {"summary": "; ".join(msg for _, msg in problems), "problems": problems},
        )


@dataclass(frozen=True)
class Rule:
    """`Annotated` metadata: validate a string with `check`; describe it in JSON Schema by `pattern`/`format`.

    The check raises ValueError with a message meant for people; the pattern (when the rule is regular)
    lets editors and `provision schema` users validate the same way.
    """

    check: Callable[[str], str]
    pattern: str | None = None
    format: str | None = None
    min_length: int | None = None
    max_length: int | None = None

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.no_info_after_validator_function(self.check, handler(source))

    def __get_pydantic_json_schema__(self, schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        keywords = {
            "pattern": self.pattern,
            "format": self.format,
            "minLength": self.min_length,
            "maxLength": self.max_length,
        }
        return {"type": "string", **{k: value for k, value in keywords.items() if value is not None}}


PlanName = Annotated[str, Rule(v.check_plan_name, v.PLAN_NAME_RE)]
EnvName = Annotated[str, Rule(v.check_env_name, v.ENV_NAME_RE)]
Guid = Annotated[str, Rule(v.check_guid, v.GUID_RE)]
Email = Annotated[str, Rule(v.check_email, v.EMAIL_RE)]
HttpsUrl = Annotated[str, Rule(v.check_https_url, format="uri")]
ViewerUrl = Annotated[str, Rule(v.check_viewer_url, format="uri")]
RedirectUri = Annotated[str, Rule(v.check_redirect_uri, format="uri")]
CorsOrigin = Annotated[str, Rule(v.check_cors_origin, v.CORS_ORIGIN_RE)]
DataSourceName = Annotated[str, Rule(v.check_data_source_name, v.DATA_SOURCE_NAME_RE)]

HttpMethod = Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]

#: the validation context key of the folder relative paths in a plan start from (the plan file's)
PLAN_DIR = "plan_dir"


def _check_local_path(value: str, info: ValidationInfo) -> str:
    """A file or folder that must exist, relative to the plan file's folder (checked when the plan is loaded
    from a file: the loader puts that folder into the validation context)."""
    base = (info.context or {}).get(PLAN_DIR)
    if base is not None and not (Path(base) / value).exists():
        raise ValueError(f"{value!r} does not exist (relative paths start at the plan file's folder, {base})")
    return value


LocalPath = Annotated[str, Field(min_length=1), AfterValidator(_check_local_path)]


def resolve_path(value: str, plan_source: Path | None) -> Path:
    """A plan's `LocalPath` as a path: relative ones start at the plan file's folder."""
    path = Path(value).expanduser()
    if path.is_absolute():
        return path
    return (plan_source.parent if plan_source is not None else Path.cwd()) / path


class Model(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        coerce_numbers_to_str=True,  # `env: 42` or a label value `2` mean the string
        defer_build=True,  # build validators on first use: importing the CLI stays fast
    )


def duplicates(values: Iterable[Any]) -> set[Any]:
    return {value for value, count in Counter(values).items() if count > 1}


class OhifSection(Model):
    """The OHIF viewer that will use what the plan provisions."""

    viewer_url: ViewerUrl | None = Field(
        default=None,
        description="Where OHIF is served (origin and optional path); https, or http on localhost/127.0.0.1."
        " Stored without a trailing '/'.",
    )
    data_source_name: DataSourceName = Field(
        default="dicomweb", description="`sourceName` of the OHIF data source (and `defaultDataSourceName`)."
    )
    friendly_name: str = Field(
        default="DICOM server", min_length=1, description="Label of the data source in the viewer."
    )

    @property
    def viewer_origin(self) -> str | None:
        """`scheme://host[:port]` of `viewer_url` (what a CORS rule must allow), or None."""
        return v.origin_of(self.viewer_url) if self.viewer_url else None

    @property
    def callback_url(self) -> str | None:
        """OHIF's default OIDC redirect URI, `viewer_url + "/callback"`, or None."""
        return f"{self.viewer_url}/callback" if self.viewer_url else None




class Section(Model):
    """Base of a target's plan section (`azure:`, `gcp:`, ...)."""

    def resolved(self, ohif: OhifSection) -> Self:
        """This section with the defaults that derive from the rest of the plan filled in (e.g. redirect URIs
        from `ohif.viewer_url`). Problems are raised with `fail`, located relative to the section."""
        return self
