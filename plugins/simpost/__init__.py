"""simpost's own stage logic (collect, notify, retention, paths): neither the results engine nor a backend.

Plain Python, no Airflow imports: the DAG file wires these functions into tasks.
"""
