"""Settings: command-line flags over ``PLACET_*`` variables over ``placet.toml`` over defaults."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from placet.domain.errors import InputError

DEFAULT_DATA_DIR = Path(".placet")
DEFAULT_PORT = 8700
DEFAULT_PUBLIC_URL = f"http://127.0.0.1:{DEFAULT_PORT}"
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything a control plane process needs to know at start-up."""

    data_dir: Path = DEFAULT_DATA_DIR
    database_url: str | None = None
    policy_dir: Path | None = None
    origin: str = "placet.local/ledger"
    lease_seconds: float = 30.0
    capsule_seconds: float = 300.0
    checkpoint_seconds: float = 1.0
    max_body_bytes: int = 1024 * 1024
    # Notifications: links in messages point at public_url; email goes through SMTP.
    public_url: str = DEFAULT_PUBLIC_URL
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_from: str | None = None
    smtp_user: str | None = None
    smtp_password: str | None = field(default=None, repr=False)
    smtp_starttls: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def db_url(self) -> str:
        """The database URL: ``database_url`` or the SQLite file in the data dir."""
        return self.database_url or f"sqlite:///{(self.data_dir / 'placet.db').resolve()}"

    @property
    def key_path(self) -> Path:
        return self.data_dir / "keys" / "control-plane.key"

    @property
    def public_key_path(self) -> Path:
        return self.data_dir / "keys" / "control-plane.pub"


_ENV = {
    "PLACET_DATABASE_URL": "database_url",
    "PLACET_POLICY_DIR": "policy_dir",
    "PLACET_ORIGIN": "origin",
    "PLACET_LEASE_SECONDS": "lease_seconds",
    "PLACET_CAPSULE_SECONDS": "capsule_seconds",
    "PLACET_CHECKPOINT_SECONDS": "checkpoint_seconds",
    "PLACET_PUBLIC_URL": "public_url",
    "PLACET_SMTP_HOST": "smtp_host",
    "PLACET_SMTP_PORT": "smtp_port",
    "PLACET_SMTP_FROM": "smtp_from",
    "PLACET_SMTP_USER": "smtp_user",
    "PLACET_SMTP_PASSWORD": "smtp_password",
    "PLACET_SMTP_STARTTLS": "smtp_starttls",
}


def _coerce(name: str, value: Any, source: str) -> Any:
    kinds = {f.name: f.type for f in fields(Settings)}
    kind = kinds.get(name)
    if kind == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise InputError(source, f"must be true or false, not {value!r}")
    if kind == "float" or kind == "int":
        try:
            number = float(value) if kind == "float" else int(value)
        except (TypeError, ValueError):
            raise InputError(source, f"must be a number, not {value!r}") from None
        if number <= 0:
            raise InputError(source, "must be more than 0")
        return number
    if not isinstance(value, str) or not value:
        raise InputError(source, f"must be a non-empty string, not {value!r}")
    if kind in ("Path | None", "Path"):
        return Path(value)
    return value


def load_settings(data_dir: Path | None = None, **overrides: Any) -> Settings:
    """Resolve settings for ``data_dir`` (flag, else ``PLACET_DATA_DIR``, else ``./.placet``)."""
    if data_dir is None:
        data_dir = Path(os.environ.get("PLACET_DATA_DIR") or DEFAULT_DATA_DIR)
    values: dict[str, Any] = {}
    toml_path = data_dir / "placet.toml"
    if toml_path.is_file():
        try:
            document = tomllib.loads(toml_path.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise InputError(str(toml_path), f"is not valid TOML: {exc}") from None
        known = {f.name for f in fields(Settings)} - {"extra", "data_dir"}
        for key, value in document.items():
            if key not in known:
                raise InputError(f"{toml_path}: {key}", "is not a placet setting")
            values[key] = _coerce(key, value, f"{toml_path}: {key}")
        if isinstance(values.get("policy_dir"), Path) and not values["policy_dir"].is_absolute():
            values["policy_dir"] = data_dir / values["policy_dir"]  # relative to placet.toml
    for env, name in _ENV.items():
        if os.environ.get(env):
            values[name] = _coerce(name, os.environ[env], env)
    for name, value in overrides.items():
        if value is not None:
            values[name] = value
    return replace(Settings(data_dir=data_dir), **values)
