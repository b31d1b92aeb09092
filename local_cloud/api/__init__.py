"""The HTTP API: one router per resource (files, uploads, share links, status), as Airflow's
api_fastapi is laid out; request models in `models`, shared dependencies (auth) in `deps`."""
