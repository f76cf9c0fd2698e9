"""Which environment variables a container step receives, derived from the settings model.

A step that runs in a container (``docker`` / ``kubernetes`` runner) sees none of the
Airflow worker's environment: the runner has to hand over every ``MARKET_*`` setting the
step's console script reads. The allow-list is not typed out: :func:`settings_variables`
walks :class:`~market_common.settings.MarketSettings` (every nested section, aliases
included), so a setting added to the model is forwarded without touching this module.

Secrets travel by reference, never as values in the DAG:

* a variable whose field is a :class:`~pydantic.SecretStr` is a *secret*; its value is
  never put into an operator's (templated, rendered, serialized) environment;
* Docker: the names are part of the DAG, the values are read from the worker's own
  environment when the task starts (:func:`secret_values`) and handed to the container as
  the provider's ``private_environment`` (not templated, hidden from the UI);
* Kubernetes: each secret is a ``secretKeyRef`` to a key of the same name in the Secret
  ``RunnerConfig.secret_name`` (optional keys: a deployment without, say, Kafka SASL simply
  does not define that key).

Not forwarded: variables the image owns (``IMAGE_OWNED``: where the dbt project and the Ivy
cache live inside the image) and the ``stack`` section, which describes the local stack of
the machine running Airflow.
"""

from __future__ import annotations

import os
import typing
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from pydantic import BaseModel, SecretStr

from market_common.settings import ENV_PREFIX, MarketSettings

# Paths inside the image, set by its Dockerfile: the worker's values point into its own
# file system and would break the step.
IMAGE_OWNED: frozenset[str] = frozenset(
    {
        f"{ENV_PREFIX}DBT__PROJECT_DIR",
        f"{ENV_PREFIX}DBT__PROFILES_DIR",
        f"{ENV_PREFIX}SPARK__IVY_DIR",
    }
)
# Sections that describe the machine running Airflow, not the services a step talks to.
LOCAL_SECTIONS: frozenset[str] = frozenset({"stack"})


@dataclass(frozen=True)
class SettingVariable:
    """One environment variable MarketSettings reads; ``secret`` when its field is a SecretStr."""

    name: str
    secret: bool


def _is_secret(annotation: object) -> bool:
    if annotation is SecretStr:
        return True
    return any(_is_secret(arg) for arg in typing.get_args(annotation))


def _model_of(annotation: object) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def _walk(model: type[BaseModel], prefix: str, *, top: bool) -> Iterator[SettingVariable]:
    for field_name, info in model.model_fields.items():
        if top and field_name in LOCAL_SECTIONS:
            continue
        key = (info.alias or field_name).upper()
        section = _model_of(info.annotation)
        if section is not None:
            yield from _walk(section, f"{prefix}{key}__", top=False)
        else:
            yield SettingVariable(f"{prefix}{key}", _is_secret(info.annotation))


def model_variables(model: type[BaseModel], *, prefix: str) -> tuple[SettingVariable, ...]:
    """Every environment variable a pydantic-settings ``model`` reads (nested with ``__``)."""
    return tuple(_walk(model, prefix, top=False))


def settings_variables(
    model: type[BaseModel] = MarketSettings, *, prefix: str = ENV_PREFIX
) -> tuple[SettingVariable, ...]:
    """Every variable of ``model`` a container step may need, image-owned ones excluded."""
    return tuple(v for v in _walk(model, prefix, top=True) if v.name not in IMAGE_OWNED)


def secret_names() -> tuple[str, ...]:
    """Names of the secret settings (forwarded by reference only)."""
    return tuple(v.name for v in settings_variables() if v.secret)


@dataclass(frozen=True)
class ContainerEnvironment:
    """What a container step gets: plain values, plus secrets named but not valued."""

    plain: dict[str, str]
    secrets: tuple[str, ...]


def container_environment(
    step_env: Mapping[str, str], *, source: Mapping[str, str] | None = None
) -> ContainerEnvironment:
    """The allow-listed, non-secret settings set in ``source`` (the worker's environment),
    overlaid by ``step_env`` (the DAG configuration's own values win).

    A secret placed in ``step_env`` (``MARKET_DAGS__STEP_ENV``) is moved out of the plain
    values as well: it is forwarded by reference like every other secret.
    """
    source = os.environ if source is None else source
    secrets = secret_names()
    plain = {
        v.name: source[v.name] for v in settings_variables() if not v.secret and v.name in source
    }
    plain |= {k: v for k, v in step_env.items() if k not in secrets}
    return ContainerEnvironment(plain=plain, secrets=secrets)


def secret_values(
    names: tuple[str, ...], *, source: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The values of ``names`` that ``source`` (default: this process's environment) sets.

    Called when a task starts, in the worker, so values never enter the DAG definition.
    """
    source = os.environ if source is None else source
    return {name: source[name] for name in names if name in source}
