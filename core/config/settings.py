"""The whole configuration: the three YAML sections, the secrets and where they came from."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field, PrivateAttr, SecretStr

from core.config.base import ConfigModel
from core.config.checks import run_problems
from core.config.errors import ConfigError
from core.config.integrations import IntegrationsSettings
from core.config.payout import PayoutSettings
from core.config.product import ProductSettings
from core.config.provenance import Provenance
from core.config.secrets import SecretSettings, secret_variable
from core.config.urls import url_secret_values


class Settings(ConfigModel):
    """Validated configuration of one faucet process. Build it with `load_settings`."""

    payout: PayoutSettings = Field(description="Contents of payout.yaml.")
    integrations: IntegrationsSettings = Field(description="Contents of integrations.yaml.")
    product: ProductSettings = Field(description="Contents of product.yaml.")
    secrets: SecretSettings = Field(description="Secrets from the environment or secret files.")
    config_dir: Path = Field(description="Directory the YAML files were read from.")

    _provenance: Provenance = PrivateAttr(default_factory=Provenance)

    @classmethod
    def assemble(
        cls,
        *,
        payout: PayoutSettings,
        integrations: IntegrationsSettings,
        product: ProductSettings,
        secrets: SecretSettings,
        config_dir: Path,
        provenance: Provenance,
    ) -> Settings:
        """Build settings from validated sections and the record of where values came from."""
        settings = cls(
            payout=payout,
            integrations=integrations,
            product=product,
            secrets=secrets,
            config_dir=config_dir,
        )
        settings._provenance = provenance
        return settings

    def source_of(self, key: str) -> str:
        """Return the file or environment variable that set dotted `key`."""
        source = self._provenance.source_of(key)
        if source:
            return source
        section, _, rest = key.partition(".")
        if section == "secrets":
            return secret_variable(rest)
        return str(self.config_dir / f"{section}.yaml")

    def reference_of(self, key: str) -> str | None:
        """Return the environment variable named by the `${NAME}` reference at `key`, if any."""
        return self._provenance.references.get(key)

    def secret_values(self) -> list[str]:
        """Return every secret value, for a log redactor.

        These are the `SecretStr` values and the passwords and secret query parameters of
        URLs in other keys, such as a database URL from `${DATABASE_URL}`.
        """
        return [value for value in _secret_values_in(self) if value]

    def check_for_run(self) -> None:
        """Raise `ConfigError` listing what `pay2slay run` needs and the configuration lacks."""
        problems = run_problems(self)
        if problems:
            raise ConfigError(problems)


def _secret_values_in(value: object) -> list[str]:
    if isinstance(value, SecretStr):
        return [value.get_secret_value()]
    if isinstance(value, BaseModel):
        return [
            secret
            for name in type(value).model_fields
            for secret in _secret_values_in(getattr(value, name))
        ]
    if isinstance(value, list):
        return [secret for item in value for secret in _secret_values_in(item)]
    if isinstance(value, str):
        return url_secret_values(value)
    return []
