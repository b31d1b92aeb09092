"""Storage backends for simpost: the `storage_backend` Airflow connection type and one module per service."""


def get_provider_info() -> dict:
    from storage_backends.provider import provider_info

    return provider_info()
