"""The plan-file model: what every plan has (version, name, env, ohif), plus one optional section per target.

The sections come from the target registry (`provision.registry`): `plan_model()` builds, once, the pydantic
model whose fields are `Plan`'s plus `<target name>: <its section model> | None`. Everything that reads plans
types them as `Plan` and asks for a section with `plan.section(name)` (or `provision.core.target.section_of`).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any, Literal, Self, cast

from pydantic import ConfigDict, Field, PrivateAttr, create_model, model_validator
from pydantic_core import PydanticCustomError

from provision.plan.base import EnvName, Model, OhifSection, PlanName, Section

__all__ = ["Plan", "plan_model"]


class Plan(Model):
    """A provision plan: the declared end state of an OHIF viewer's set-up. Load one with `load_plan`; the
    model with every target's section is `plan_model()`."""

    model_config = ConfigDict(title="provision plan")

    version: Literal[1] = Field(description="Plan format version; only 1.")
    name: PlanName = Field(description="The plan's identity, recorded in ownership tags.")
    env: EnvName = Field(
        default="default", description='Environment name (e.g. "pr-${PR_NUMBER}"), recorded in ownership tags.'
    )
    ohif: OhifSection = Field(default_factory=lambda: OhifSection())

    _source: Path | None = PrivateAttr(default=None)

    @property
    def source(self) -> Path | None:
        """The file the plan was loaded from (None when built in memory)."""
        return self._source

    @classmethod
    def model_validate(cls, obj: Any, **kwargs: Any) -> Self:
        """`Plan.model_validate(data)` validates with every target's section (`plan_model()`)."""
        if cls is Plan:
            return cast(Self, plan_model().model_validate(obj, **kwargs))
        return super().model_validate(obj, **kwargs)

    def section(self, name: str) -> object | None:
        """The section of target `name` (None when the plan has none, or no target has that name)."""
        value = self.__dict__.get(name)
        return value if isinstance(value, Section) else None

    @model_validator(mode="after")
    def _resolve_sections(self) -> Self:
        """Let each section fill the defaults that derive from the rest of the plan (its `resolved`)."""
        for name, value in list(self.__dict__.items()):
            if not isinstance(value, Section):
                continue
            try:
                resolved = value.resolved(self.ohif)
            except PydanticCustomError as error:
                if error.type != "plan_rules":
                    raise
                context: dict[str, Any] = dict(error.context or {})
                context["problems"] = [((name, *loc), message) for loc, message in context["problems"]]
                raise PydanticCustomError("plan_rules", "{summary}", context) from None
            if resolved is not value:
                # frozen models: the resolved section replaces the parsed one before anyone can see it
                object.__setattr__(self, name, resolved)
        return self


@cache
def plan_model() -> type[Plan]:
    """`Plan` with one optional top-level section per registered target."""
    from provision.registry import targets

    sections: dict[str, Any] = {
        target.name: (target.section_model() | None, Field(default=None, description=target.summary))
        for target in targets()
    }
    model: type[Plan] = create_model("Plan", __base__=Plan, __module__=__name__, **sections)
    return model
