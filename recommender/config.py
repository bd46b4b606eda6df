"""Settings from the environment (and a ``.env`` file): one declaration per setting, with its range.

Every entry point (the service's app factory and gunicorn's master, the generator, the CLIs)
reads ``.env`` of the working directory through :func:`load_env_file`, into the process
environment: not only these settings read it, boto3 takes its credentials (``AWS_ACCESS_KEY_ID``,
``AWS_PROFILE``, ...) from there too.  A variable already set in the environment wins over the file.

Each setting is declared once, here: its name (the field, upper-cased, is the environment
variable), default, allowed range and meaning.  The configuration table of docs/configuration.md
(and the README's key settings) is generated from these declarations (``python -m
recommender.config``, ``scripts/render_docs.py``) and tests check that it, and ``example.env``,
agree with them.  A bad value stops the program at start with one line naming
the variable, instead of being clamped or discovered halfway through a night's run.

The generator and the API read different settings (a service has no business knowing the
generator's lock lease, nor the generator the API's keys), so each has its own class; both
share where the data lives (:class:`StoreSettings`).
"""

from __future__ import annotations

import ipaddress
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from dotenv import load_dotenv
from pydantic import AliasChoices, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from recommender.models.registry import MODEL_HANDLES, check_params


class SettingsError(ValueError):
    """A setting with a bad value; the message is one line naming the variable."""


class StoreSettings(BaseSettings):
    """Where the similar-users tables live: shared by the generator and the API."""

    model_config = SettingsConfigDict(env_ignore_empty=True, extra="ignore", frozen=True, populate_by_name=True)

    dynamodb_endpoint_url: str | None = Field(
        None, description="`http://127.0.0.1:8000` for DynamoDB Local; empty: botocore's own (`AWS_ENDPOINT_URL_DYNAMODB`, "
                          "`AWS_ENDPOINT_URL`), else AWS DynamoDB of the region")
    dynamodb_table: str = Field(
        "similar_users", pattern=r"^[A-Za-z0-9_.-]{3,180}$",
        description="table name prefix: run tables `<prefix>-<run_id>` and `<prefix>-control` (created on demand)")
    aws_region: str = Field(
        "us-east-1", validation_alias=AliasChoices("aws_region", "aws_default_region"),
        description="AWS region (`AWS_DEFAULT_REGION` also read)")
    db_tcp_keepalive: bool = Field(
        True, description="TCP keep-alive on DynamoDB connections (botocore `tcp_keepalive`): a pooled connection a NAT or "
                          "load balancer dropped while idle fails fast instead of waiting out the read timeout")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="log level")

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.strip().upper() if isinstance(value, str) else value


class GeneratorSettings(StoreSettings):
    """The batch generator's settings (``run_generator.py``)."""

    data_dir: str = Field("data", description="folder with the four CSV files, or `s3://bucket/prefix`")
    top_n: int = Field(10, ge=1, le=100, description="neighbours stored per user and model (`--top-n`)")
    topk_block_mb: int = Field(256, ge=8, le=65536, description="memory budget (MB) of one block of the top-k search")
    search: Literal["exact", "ann", "auto"] = Field(
        "auto", description="all-users search: `exact`, `ann` (sparse vectors: a cluster index on the full vectors; dense ones: faiss IVF candidates, exact re-ranking), `auto`: exact up to `AUTO_EXACT_MAX_USERS` users of a model; above, ann at the effort whose recall@10 on the recall sample reaches `MIN_RECALL`, else exact (`--search`)")
    auto_exact_max_users: int = Field(
        200_000, ge=2, le=10**9, description="`SEARCH=auto` searches exactly up to this many users of a model (docs: Search)")
    min_recall: float = Field(
        0.95, ge=0, le=1, description="recall@10 floor of an approximate search: `SEARCH=auto` raises its probes or searches exactly to reach it; below it `SEARCH=ann` fails the run before publishing (exit 1)")
    recall_sample_users: int = Field(2000, ge=100, le=1_000_000, description="users sampled to measure the approximate search's recall@10")
    ann_candidates: int = Field(
        100, ge=1, le=4096, description="approximate search: candidates per user from the IVF index re-ranked by exact cosine, dense vectors (at least top-N + 1 are taken)")
    ann_sparse_clusters: int = Field(
        64, ge=2, le=4096, description="approximate search of sparse vectors (TF-IDF, BM25 views): clusters of the index (seeded spherical k-means on the full vectors)")
    ann_sparse_probes: int = Field(
        12, ge=1, le=4096, description="approximate search of sparse vectors: clusters walked per user, the nearest by centroid (`SEARCH=auto` raises it while the pilot's recall@10 is under `MIN_RECALL`)")
    ann_nprobe: int = Field(16, ge=1, le=65536, description="approximate search: IVF cells scanned per user (of about 4 × sqrt(users) cells)")
    ann_dims: int = Field(64, ge=2, le=1024, description="approximate search: dimensions of the seeded TruncatedSVD projection of dense vectors wider than 256 in the IVF index")
    search_dense_mb: int = Field(
        1024, ge=16, le=65536, description="memory (MB) for the dense copy of the candidates in the exact search; tiles above it")
    engine: Literal["local", "dask"] = Field(
        "local", description="where the partitions of users (exact search, reasons, writes) run: `local` (this process for a model under 50,000 users, else one worker process per core), or `dask` tasks (`--engine`)")
    dask_scheduler_address: str | None = Field(
        None, description="with `ENGINE=dask`: the scheduler to join (`tcp://host:8786`); empty: a LocalCluster of `DASK_WORKERS` processes (`--scheduler`)")
    dask_workers: int = Field(2, ge=1, le=256, description="worker processes of the LocalCluster started by `ENGINE=dask` without a scheduler")
    keep_runs: int = Field(2, ge=1, le=100, description="complete runs kept in DynamoDB; older ones are dropped by the next run")
    generator_lock_lease_seconds: float = Field(
        120.0, ge=1, le=86400, description="generator lock lease, renewed every third of it; a killed run blocks the next one this long at most")
    write_threads: int = Field(4, ge=1, le=64, description="parallel batch writers: threads of the generator's writer, and of each partition's worker process")
    generator_db_max_attempts: int = Field(
        8, ge=1, le=20, description="generator's DynamoDB attempts per request, the first included (botocore "
                                    "`total_max_attempts`; exponential backoff with jitter between them) before the run fails")
    generator_db_retry_mode: Literal["standard", "adaptive"] = Field(
        "standard", description="botocore retry mode of the generator's client: `adaptive` also slows the client down "
                                "when DynamoDB throttles (a provisioned table shared with other writers)")
    generator_db_connect_timeout: float = Field(5.0, gt=0, le=300, description="generator's DynamoDB connect timeout, seconds")
    generator_db_read_timeout: float = Field(30.0, gt=0, le=900, description="generator's DynamoDB read timeout, seconds")
    run_report_dir: Path = Field(Path(".run/reports"), description="where each run's JSON summary is written")
    min_coverage_ratio: float = Field(
        0.5, ge=0, le=1, description="refuse to publish a model covering fewer users than this share of its published run (`--force`: 0)")
    s3_endpoint_url: str | None = Field(
        None, description="S3 endpoint when `DATA_DIR` or `EXPORT_URI` is `s3://…` and not AWS (MinIO, LocalStack, moto); "
                          "empty: botocore's own "
                          "(`AWS_ENDPOINT_URL_S3`, `AWS_ENDPOINT_URL`), else AWS")
    sink: Literal["write", "export", "import"] = Field(
        "write", description="where a run goes (`--sink`; docs/sinks.md): `write` BatchWriteItem into a new run table, `export` DynamoDB-JSON files at `EXPORT_URI` only, `import` export to S3 then ImportTable (AWS; not DynamoDB Local)")
    export_uri: str | None = Field(
        None, description="with `SINK=export`: an empty folder or `s3://bucket/prefix`; with `SINK=import`: `s3://bucket/prefix`, each run under `<prefix>/<run_id>/` (`--export-uri`)")
    import_poll_seconds: float = Field(10.0, gt=0, le=600, description="with `SINK=import`: seconds between two DescribeImport calls")
    import_timeout_seconds: float = Field(
        21600.0, ge=1, le=172800, description="with `SINK=import`: an import still in progress after this fails the run (nothing published)")
    import_billing_mode: Literal["PAY_PER_REQUEST", "PROVISIONED"] = Field(
        "PAY_PER_REQUEST", description="with `SINK=import`: billing mode of the imported run table (the write path's tables are on-demand)")
    import_read_capacity: int = Field(5, ge=1, le=1_000_000, description="with `IMPORT_BILLING_MODE=PROVISIONED`: the run table's read capacity units")
    import_write_capacity: int = Field(5, ge=1, le=1_000_000, description="with `IMPORT_BILLING_MODE=PROVISIONED`: the run table's write capacity units")
    explain: bool = Field(True, description="store up to 3 reasons per neighbour (`\"explain\": true` in the API); `false` stores lists only")
    model_params: Annotated[dict[str, dict[str, Any]], NoDecode] = Field(
        default_factory=dict,
        description='per-model parameters as JSON, e.g. `{"knn_collab_filtering_user_course_view": {"weighting": "log"}}`')

    @field_validator("search", "engine", "generator_db_retry_mode", "sink", mode="before")
    @classmethod
    def _search(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("import_billing_mode", mode="before")
    @classmethod
    def _billing(cls, value: Any) -> Any:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("model_params", mode="before")
    @classmethod
    def _model_params(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError as exc:
                raise ValueError(f"not valid JSON ({exc.msg} at character {exc.pos})") from None
        if not isinstance(value, dict) or not all(isinstance(v, dict) for v in value.values()):
            raise ValueError('must be a JSON object of objects: {"<model_handle>": {"<parameter>": value}}')
        for handle, params in value.items():
            if handle not in MODEL_HANDLES:
                raise ValueError(f"unknown model {handle!r}; known models: {', '.join(MODEL_HANDLES)}")
            check_params(handle, params)
        return value


class ApiSettings(StoreSettings):
    """The HTTP service's settings (``run_server.py``, gunicorn)."""

    host: str = Field("127.0.0.1", description="`run_server.py` bind address (gunicorn: `make serve HOST=… PORT=…`); "
                                                 "an address other machines reach is refused while `API_KEYS` is empty, "
                                                 "by `run_server.py` and by gunicorn's `--bind` alike")
    port: int = Field(5000, ge=1, le=65535, description="`run_server.py` port")
    default_model: str = Field(MODEL_HANDLES[0], description="model used when a request names none")
    api_db_connect_timeout: float = Field(0.5, gt=0, le=30, description="API's DynamoDB connect timeout, seconds")
    api_db_read_timeout: float = Field(0.7, gt=0, le=30, description="API's DynamoDB read timeout, seconds")
    api_db_max_attempts: int = Field(
        1, ge=1, le=10, description="API's DynamoDB attempts per call, first included (more can exceed the 2 s budget)")
    api_db_max_pool_connections: int = Field(
        32, ge=1, le=1000, description="kept-alive DynamoDB connections per API worker process (botocore "
                                       "`max_pool_connections`), as many as `MAX_IN_FLIGHT`; more concurrent misses "
                                       "open and close extra ones")
    max_body_bytes: int = Field(4096, ge=256, le=1_048_576, description="larger request bodies get 413")
    max_in_flight: int = Field(
        32, ge=0, le=10_000, description="requests each API worker process works on at once; beyond, 503 `overloaded` with "
                                        "`Retry-After` at once (`/health` and `/metrics` exempt; 0: no bound)")
    log_format: Literal["text", "json"] = Field("text", description="`json`: one JSON object per log line")
    api_keys: Annotated[tuple[str, ...], NoDecode] = Field(
        (), repr=False, description="comma-separated keys; when set, every endpoint with data (all but `/health` and the docs) needs `X-API-Key`")
    allow_public_without_keys: bool = Field(
        False, description="`true`: serve an address other machines reach with `API_KEYS` empty (something in front, a "
                           "gateway or a private network, decides who gets in); by default such a start is refused")
    docs_require_key: bool = Field(
        False, description="`true`: `/docs`, `/openapi.json` and the docs' assets need `X-API-Key` too (by default they hold no data and stay open)")
    validate_responses: bool = Field(
        False, description="`true`: check every answer against the published OpenAPI schema before sending it (costs CPU on "
                           "every request; the test suite turns it on, so a drift fails there rather than in production)")
    pointer_cache_seconds: float = Field(5.0, ge=0, le=3600, description="how long the API caches a model's run pointer")
    pointer_cache_dir: Path | None = Field(
        None, description="folder where the worker processes of one server share that cache (`gunicorn_conf.py` makes one per "
                          "server); empty: each process its own")
    run_check_seconds: float = Field(
        5.0, ge=0, le=60, description="how long each API process trusts its last look at the database: `/health` answers from it "
                                      "(a probe after that refreshes it in the background), and cached items are served without "
                                      "reading their run's table, this long at most (0: check on every request)")
    item_cache_size: int = Field(
        100_000, ge=0, le=10_000_000, description="stored items each API process keeps in memory (LRU; 0: off); a published run never changes, so they are never stale")
    experiments_file: str | None = Field(
        "experiments.toml", description="A/B experiments (TOML, see `docs/experiments.example.toml`; `docs/experiments.md`); "
                                        "the default file runs none while it does not exist, a file named here must exist")
    experiments_reload_seconds: float = Field(
        5.0, ge=0.1, le=3600, description="how often each API process checks the experiments file for changes")
    evaluation_results_file: Path | None = Field(
        None, description="offline evaluation results (`docs/evaluation/results.json`, from `make evaluate`) whose course "
                          "NDCG@10 and community precision `/explore` shows per model; empty: none")
    ab_queue_size: int = Field(
        10_000, ge=10, le=1_000_000, description="exposure and feedback records queued per API process for the background writer")

    @field_validator("api_keys", mode="before")
    @classmethod
    def _keys(cls, value: Any) -> Any:
        # ``API_KEYS=k1, k2``: stripped, empty ones dropped.
        if isinstance(value, str):
            if value.lstrip().startswith("["):
                raise ValueError("a comma-separated list, API_KEYS=key-one,key-two, not JSON")
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("api_keys")
    @classmethod
    def _header_safe(cls, keys: tuple[str, ...]) -> tuple[str, ...]:
        # A key a client cannot send in the X-API-Key header as it is written (a character outside
        # printable ASCII: an accent, a control character) would never match: refused, not kept.
        for number, key in enumerate(keys, 1):
            if not all(" " <= c <= "~" for c in key):
                raise ValueError(f"key {number} of {len(keys)} has a character other than printable ASCII, "
                                 "which no X-API-Key header carries as written")
        return keys

    @field_validator("default_model", mode="before")
    @classmethod
    def _default_model(cls, value: Any) -> Any:
        handle = value.strip().lower() if isinstance(value, str) else value
        if handle not in MODEL_HANDLES:
            raise ValueError(f"unknown model {value!r}; known models: {', '.join(MODEL_HANDLES)}")
        return handle

    @field_validator("log_format", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value


def public_without_keys(host: str, settings: ApiSettings, shown: str | None = None) -> str | None:
    """The error when the service would answer anyone: ``host`` faces other machines, no API key
    guards the service and ``ALLOW_PUBLIC_WITHOUT_KEYS`` does not say that is intended; else None.

    One rule for every way the service starts: ``run_server.py`` (``HOST``, named so by
    default) and gunicorn's master (each ``--bind`` address, ``shown`` as such, in
    ``recommender/api/gunicorn_conf.py``), whoever runs them.  Loopback needs no key; a host
    name may resolve to anything, so it counts as public.
    """
    if settings.api_keys or settings.allow_public_without_keys or host == "localhost":
        return None
    try:
        if ipaddress.ip_address(host).is_loopback:
            return None
    except ValueError:
        pass
    return (f"{shown or f'HOST={host}'} is reachable from other machines but API_KEYS is empty: set API_KEYS, "
            f"or bind 127.0.0.1 (the default), or set ALLOW_PUBLIC_WITHOUT_KEYS=true if something in front checks clients")


def generator_default(name: str) -> Any:
    """The default of the generator's setting ``name``, for code run without the settings (the
    pipeline's and the search's own defaults): the number is declared once, above."""
    return GeneratorSettings.model_fields[name].default


S = TypeVar("S", bound=StoreSettings)


def env_name(cls: type[StoreSettings], field: str) -> str:
    alias = cls.model_fields[field].validation_alias
    return (alias.choices[0] if isinstance(alias, AliasChoices) else field).upper()


ENV_FILE = ".env"


def load_env_file(env_file: str | os.PathLike[str] | None = ENV_FILE) -> None:
    """Add ``env_file``'s variables (when it exists) to the process environment, under those already set.

    Into ``os.environ`` rather than only into a settings object: boto3 reads its credentials and
    region from the environment, so a ``.env`` known to the settings alone left every DynamoDB call
    without credentials.  Real environment variables win (``override=False``).
    """
    if env_file and Path(env_file).is_file():
        load_dotenv(env_file, override=False)


def load_settings(cls: type[S], env_file: str | os.PathLike[str] | None = ENV_FILE) -> S:
    """Read ``cls`` from the environment, after ``env_file`` (when it exists) has filled in what it does not set.

    Raises :class:`SettingsError` with one line naming the first bad variable.
    """
    load_env_file(env_file)
    try:
        return cls()
    except ValidationError as exc:
        first = exc.errors()[0]
        field = str(first["loc"][0]) if first.get("loc") else "?"
        name = env_name(cls, field) if field in cls.model_fields else field.upper()
        value = first.get("input")
        shown = "" if isinstance(value, dict) else f"={value!r}" if field != "api_keys" else "=…"
        raise SettingsError(f"setting {name}{shown}: {first['msg'].removeprefix('Value error, ')}") from None


def markdown_table(names: Sequence[str] | None = None) -> str:
    """The configuration table (docs/configuration.md), from the declarations above.

    ``names``: only these variables, in this order (the README's key settings); an unknown name is
    an error, so a renamed setting cannot silently drop out of that list.
    """
    rows: dict[str, str] = {}
    for cls, who in ((StoreSettings, "both"), (GeneratorSettings, "generator"), (ApiSettings, "API")):
        for field, info in cls.model_fields.items():
            name = env_name(cls, field)
            if name in rows:
                continue
            default = info.get_default(call_default_factory=True)
            shown = "*(empty)*" if default in (None, (), {}) else f"`{default}`"
            rows[name] = f"| `{name}` | {who} | {shown} | {info.description}{_range(info)} |"
    unknown = [n for n in names or () if n not in rows]
    if unknown:
        raise KeyError(f"unknown settings: {', '.join(unknown)}")
    chosen = list(rows.values()) if names is None else [rows[n] for n in names]
    return "\n".join(["| variable | used by | default | meaning |", "| --- | --- | --- | --- |", *chosen])


def _range(info: Any) -> str:
    """`` (1..100)`` from the field's annotated-types bounds."""
    low = next((f"{m.ge}" for m in info.metadata if hasattr(m, "ge")), None)
    low = low or next((f">{m.gt}" for m in info.metadata if hasattr(m, "gt")), None)
    high = next((f"{m.le}" for m in info.metadata if hasattr(m, "le")), None)
    return f" ({low or ''}..{high or ''})" if low or high else ""


if __name__ == "__main__":
    sys.stdout.write(markdown_table() + "\n")
