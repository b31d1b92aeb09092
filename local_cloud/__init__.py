"""local_cloud: the self-hosted file server behind the `local` storage service.

Importing the package imports nothing heavy: the server (FastAPI, uvicorn) lives in
`local_cloud.server`, the requests-only client in `local_cloud.client`.
"""

__version__ = "1.0.0"
