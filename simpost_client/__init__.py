"""Simulator-side client: trigger simulation_postprocess over Airflow's REST API (requests only)."""
