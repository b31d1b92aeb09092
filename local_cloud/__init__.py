"""local_cloud: the self-hosted file server behind the `local` storage service."""
