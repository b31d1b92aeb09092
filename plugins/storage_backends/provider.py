"""Provider metadata Airflow reads through the `apache_airflow_provider` entry point.

Airflow 3.3 builds the connection form from `conn-fields` (stored as plain keys in extra) and
`ui-field-behaviour` (standard fields hidden or relabelled); hooks can no longer declare forms.
"""

from storage_backends.settings import IDENTIFIER

CONN_TYPE = "storage_backend"
HOOK_NAME = "Storage backend (simpost)"
# Holds the service's settings and (dropbox) secrets, so the api-server must redact it by name:
# `[core] sensitive_var_conn_names` (Airflow 3.3.2 ignores `format: password` when redacting).
CONFIG_FIELD = "storage_backend_config"

_CONFIG_HELP = (
    "JSON, per service. local: {\"server\": \"127.0.0.1:8976\"} (host:port or URL of local_cloud; its API key"
    " goes in Backend token). seafile: {\"server\": \"https://seafile.example.org\", \"repoid\":"
    " \"<seafile-list-repo-ids>\", \"folder\": \"/simpost\"} (API token from seafile-get-token in Backend token)."
    " dropbox: {\"app_key\": \"...\", \"app_secret\": \"...\", \"refresh_token\": \"...\", \"folder\": \"/simpost\"}"
    " (or leave it empty and put a legacy access token in Backend token). Optional \"chunk_size\" in bytes"
    " (dropbox, seafile). s3: {\"bucket\": \"...\", \"access_key_id\": \"...\", \"endpoint_url\":"
    " \"https://minio.example.org\" (leave out for AWS), \"region\", \"prefix\" (default simpost/),"
    " \"storage_class\", \"archive_storage_class\" (GLACIER, DEEP_ARCHIVE), \"addressing_style\""
    " (path, virtual), \"public_base_url\" (a bucket readable by anyone: plain links that never expire)}"
    " (the secret access key in Backend token)."
)

CONN_FIELDS = {
    "storage_backend": {
        "label": "Backend name",
        "description": "Human name shown in e-mails and reports, e.g. 'Lab Dropbox'. Defaults to the connection id.",
        "schema": {"type": ["string", "null"]},
    },
    "storage_backend_id": {
        "label": "Backend identifier",
        "description": "Which service: dropbox, seafile, local or s3, optionally with a suffix after -, _ or ."
        " (dropbox_oauth2, seafile-zfn, s3-minio).",
        "schema": {"type": "string", "pattern": IDENTIFIER.pattern},
    },
    CONFIG_FIELD: {
        "label": "Backend config",
        "description": _CONFIG_HELP,
        "schema": {"type": ["string", "null"], "format": "password"},
    },
    "storage_backend_keep_days": {
        "label": "Backend keep days",
        "description": "Days an upload is kept (and its share link valid) before the retention DAG deletes it;"
        " 0 keeps forever.",
        "schema": {"type": ["integer", "null"], "minimum": 0, "default": 0},
    },
    "storage_backend_active": {
        "label": "Backend active",
        "description": "Uncheck to refuse new uploads to this backend (retention still runs).",
        "schema": {"type": ["boolean", "null"], "default": True},
    },
}

UI_FIELD_BEHAVIOUR = {
    "hidden-fields": ["schema", "host", "port", "login"],
    "relabeling": {"password": "Backend token", "description": "Backend description"},
    "placeholders": {
        "password": "The service's secret: local API key, Seafile API token, S3 secret access key,"
                    " or a legacy Dropbox token",
        # not shown by Airflow 3.3.2, which prefixes every placeholder key but host, schema, login,
        # password, port and extra; kept for the versions that fix that
        "description": "What this backend is for, e.g. 'OPS runs of the lab, kept 30 days'",
        "storage_backend": "Lab Dropbox",
        "storage_backend_id": "dropbox | seafile | local | s3 (suffix allowed: seafile-zfn, s3-minio)",
        CONFIG_FIELD: "{\"server\": \"127.0.0.1:8976\"}",
        "storage_backend_keep_days": "30",
    },
}


def provider_info() -> dict:
    return {
        "package-name": "simpost",
        "name": "simpost storage backends",
        "description": "Storage backends (dropbox, seafile, local, s3) for simpost uploads.",
        "versions": ["0.1.0"],
        "integrations": [
            {"integration-name": "simpost storage backends", "tags": ["service"]},
        ],
        "hooks": [
            {"integration-name": "simpost storage backends", "python-modules": ["storage_backends.hook"]},
        ],
        "connection-types": [
            {
                "connection-type": CONN_TYPE,
                "hook-class-name": "storage_backends.hook.StorageBackendHook",
                "hook-name": HOOK_NAME,
                "conn-fields": CONN_FIELDS,
                "ui-field-behaviour": UI_FIELD_BEHAVIOUR,
            }
        ],
    }
