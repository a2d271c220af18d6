"""Process settings, read once: command-line flags over ``LLMCOST_*`` environment variables over
defaults. Everything about money and policy lives in the YAML config file instead (``config``),
which can be reloaded; these bind ports and files and change on restart only.
"""

from __future__ import annotations

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_LEDGER_URL = "sqlite:///llmcost.db"


class Settings(BaseSettings):
    """``Settings(**flags)``: keyword arguments win over the environment (``LLMCOST_<FIELD>``)."""

    model_config = SettingsConfigDict(env_prefix="LLMCOST_", frozen=True, extra="forbid")

    # The OTLP ports listen on every interface (services send from elsewhere); the API port,
    # which shows spend, only on loopback unless told otherwise (``LLMCOST_HTTP_HOST``).
    host: str = "0.0.0.0"
    http_host: str = "127.0.0.1"
    otlp_grpc_port: int = Field(4317, ge=0, le=65535)
    otlp_http_port: int = Field(4318, ge=0, le=65535)
    http_port: int = Field(9464, ge=0, le=65535)
    ledger_url: str = DEFAULT_LEDGER_URL
    config_path: str | None = Field(None, validation_alias=AliasChoices("config_path", "LLMCOST_CONFIG"))
    enable_grpc: bool = True
    watch_config: bool = True
    session_idle_seconds: float = Field(300.0, ge=0)
    # A client must send its request line and headers within this many seconds of connecting
    # (or of its previous response), and its body within ``body_timeout_seconds``, a deadline
    # extended while the body keeps arriving at ``body_min_bytes_per_second`` on average: a silent
    # or trickling client is cut off instead of holding a connection slot, a large export on a
    # slow link is not.
    header_timeout_seconds: float = Field(10.0, gt=0)
    body_timeout_seconds: float = Field(30.0, gt=0)
    body_min_bytes_per_second: float = Field(16 * 1024, gt=0)
    # Open connections per port; past it new requests get 503 at once.
    max_connections: int = Field(1024, ge=1)
    # Bytes of export bodies being read, inflated and decoded at once, over both receivers (an
    # HTTP body's Content-Length is checked before it is read, its bytes charged as they
    # arrive); past it, 429 or gRPC RESOURCE_EXHAUSTED. One export alone is always admitted.
    max_inflight_bytes: int = Field(64 * 1024 * 1024, ge=1)
    # OTLP/gRPC: threads running calls, and calls admitted at once (the rest wait for a thread);
    # past it, RESOURCE_EXHAUSTED before the message is read.
    grpc_workers: int = Field(8, ge=1)
    grpc_max_concurrent_rpcs: int = Field(16, ge=1)
    # Grafana's base URL (http://grafana:3000): the page links to the shipped dashboards there.
    grafana_url: str | None = None

    @classmethod
    def from_flags(cls, **flags: object) -> Settings:
        """Settings from command-line flags; a flag left unset (None) falls back to the environment."""
        return cls(**{key: value for key, value in flags.items() if value is not None})  # type: ignore[arg-type]
