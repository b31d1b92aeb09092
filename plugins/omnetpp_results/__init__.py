"""OMNeT++ results engine: parse result files, compute stats, write the archive parts. No Airflow here."""
from .errors import ResultsError
from .pipeline import Inputs, find_inputs, parse, sha256_file, stats, verify_archive, write_archive

__all__ = ["Inputs", "ResultsError", "find_inputs", "parse", "sha256_file", "stats", "verify_archive", "write_archive"]
