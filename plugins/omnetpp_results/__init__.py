"""OMNeT++ results engine: parse result files, compute stats, write the archive parts. No Airflow here."""
