"""Provider metadata Airflow reads through the `apache_airflow_provider` entry point."""


def provider_info() -> dict:
    return {
        "package-name": "simpost",
        "name": "simpost storage backends",
        "description": "Storage backends (dropbox, seafile, local) for simpost uploads.",
        "versions": ["0.1.0"],
        "connection-types": [],
    }
