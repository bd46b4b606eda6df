"""Settings from the environment (and a ``.env`` file), shared by the generator and the API.

One place reads the environment so that the generator, the service and the tests agree on
what a setting means; ``example.env`` documents every name used here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from dotenv import load_dotenv

DEFAULT_MODEL = "tfidf_user_interest"


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"setting {name}={raw!r} is not an integer") from None


def _float(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError:
        raise ValueError(f"setting {name}={raw!r} is not a number") from None


def _str(name: str, default: str) -> str:
    return os.environ.get(name, "").strip() or default


@dataclass(frozen=True)
class Settings:
    """Every tunable of the service; built from the environment by :func:`load_settings`."""

    data_dir: Path = Path("data")
    dynamodb_endpoint_url: str | None = None  # None: the real AWS DynamoDB of the region
    aws_region: str = "us-east-1"
    table_name: str = "similar_users"
    top_n: int = 10
    default_model: str = DEFAULT_MODEL
    # The API must answer within 2 s even when the database is gone: short timeouts, few tries.
    api_connect_timeout: float = 0.5
    api_read_timeout: float = 0.7
    api_max_attempts: int = 2
    max_body_bytes: int = 4096
    host: str = "127.0.0.1"
    port: int = 5000
    log_level: str = "INFO"
    topk_block_mb: int = 256


def load_settings(env_file: str | os.PathLike[str] | None = ".env") -> Settings:
    """Read settings; a ``.env`` file fills in what the real environment does not set."""
    if env_file and Path(env_file).is_file():
        load_dotenv(env_file, override=False)
    endpoint = os.environ.get("DYNAMODB_ENDPOINT_URL", "").strip() or None
    return Settings(
        data_dir=Path(_str("DATA_DIR", "data")),
        dynamodb_endpoint_url=endpoint,
        aws_region=_str("AWS_REGION", _str("AWS_DEFAULT_REGION", "us-east-1")),
        table_name=_str("DYNAMODB_TABLE", "similar_users"),
        top_n=_int("TOP_N", 10),
        default_model=_str("DEFAULT_MODEL", DEFAULT_MODEL).lower(),
        api_connect_timeout=_float("API_DB_CONNECT_TIMEOUT", 0.5),
        api_read_timeout=_float("API_DB_READ_TIMEOUT", 0.7),
        api_max_attempts=_int("API_DB_MAX_ATTEMPTS", 2),
        max_body_bytes=_int("MAX_BODY_BYTES", 4096),
        host=_str("HOST", "127.0.0.1"),
        port=_int("PORT", 5000),
        log_level=_str("LOG_LEVEL", "INFO").upper(),
        topk_block_mb=_int("TOPK_BLOCK_MB", 256),
    )
