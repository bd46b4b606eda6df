"""Settings from the environment (and a ``.env`` file), shared by the generator and the API.

One place reads the environment so that the generator, the service and the tests agree on
what a setting means; ``example.env`` documents every name used here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
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


def _csv(name: str) -> tuple[str, ...]:
    """Comma-separated values, stripped, empty ones dropped (``API_KEYS=k1, k2``)."""
    return tuple(part.strip() for part in os.environ.get(name, "").split(",") if part.strip())


def _choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    value = _str(name, default).lower()
    if value not in choices:
        raise ValueError(f"setting {name}={value!r} is not one of {', '.join(choices)}")
    return value


@dataclass(frozen=True)
class Settings:
    """Every tunable of the service; built from the environment by :func:`load_settings`."""

    data_dir: str = "data"  # a folder or s3://bucket/prefix (a Path would mangle the URL)
    dynamodb_endpoint_url: str | None = None  # None: the real AWS DynamoDB of the region
    aws_region: str = "us-east-1"
    table_name: str = "similar_users"
    top_n: int = 10
    default_model: str = DEFAULT_MODEL
    # The API must answer within 2 s even when the database is gone: short timeouts, few tries.
    api_connect_timeout: float = 0.5
    api_read_timeout: float = 0.7
    api_max_attempts: int = 1
    max_body_bytes: int = 4096
    host: str = "127.0.0.1"
    port: int = 5000
    log_level: str = "INFO"
    topk_block_mb: int = 256
    # Publishing (generator): see recommender/store/publisher.py.
    keep_runs: int = 2
    lock_lease_seconds: float = 120.0
    write_threads: int = 4
    generator_max_attempts: int = 8
    run_report_dir: Path = Path(".run/reports")
    # Reading (API): how long a model's run pointer is cached per process.
    pointer_cache_seconds: float = 5.0
    # API security and observability (recommender/api): keys never appear in repr or logs.
    api_keys: tuple[str, ...] = field(default=(), repr=False)
    log_format: str = "text"  # "text" or "json"


def load_settings(env_file: str | os.PathLike[str] | None = ".env") -> Settings:
    """Read settings; a ``.env`` file fills in what the real environment does not set."""
    if env_file and Path(env_file).is_file():
        load_dotenv(env_file, override=False)
    endpoint = os.environ.get("DYNAMODB_ENDPOINT_URL", "").strip() or None
    return Settings(
        data_dir=_str("DATA_DIR", "data"),
        dynamodb_endpoint_url=endpoint,
        aws_region=_str("AWS_REGION", _str("AWS_DEFAULT_REGION", "us-east-1")),
        table_name=_str("DYNAMODB_TABLE", "similar_users"),
        top_n=_int("TOP_N", 10),
        default_model=_str("DEFAULT_MODEL", DEFAULT_MODEL).lower(),
        api_connect_timeout=_float("API_DB_CONNECT_TIMEOUT", 0.5),
        api_read_timeout=_float("API_DB_READ_TIMEOUT", 0.7),
        api_max_attempts=_int("API_DB_MAX_ATTEMPTS", 1),
        max_body_bytes=_int("MAX_BODY_BYTES", 4096),
        host=_str("HOST", "127.0.0.1"),
        port=_int("PORT", 5000),
        log_level=_str("LOG_LEVEL", "INFO").upper(),
        topk_block_mb=_int("TOPK_BLOCK_MB", 256),
        keep_runs=_int("KEEP_RUNS", 2),
        lock_lease_seconds=_float("GENERATOR_LOCK_LEASE_SECONDS", 120.0),
        write_threads=_int("WRITE_THREADS", 4),
        generator_max_attempts=_int("GENERATOR_DB_MAX_ATTEMPTS", 8),
        run_report_dir=Path(_str("RUN_REPORT_DIR", ".run/reports")),
        pointer_cache_seconds=_float("POINTER_CACHE_SECONDS", 5.0),
        api_keys=_csv("API_KEYS"),
        log_format=_choice("LOG_FORMAT", "text", ("text", "json")),
    )
