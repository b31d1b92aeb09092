"""What simpost's DAGs share that needs Airflow (task context, XCom, hooks); see run.py."""
