"""OMNeT++ results engine: parse result files, compute stats and the report, write the archive. No Airflow here.

find_inputs (inputs) -> parse (parsing) -> stats (export: csv/, simrun/, graphs/, INFO.txt,
report.html/.pdf) -> write_archive (archive); every result is a dataclass with as_dict() for XCom.
"""
from .archive import ArchiveResult, sha256_file, verify_archive, write_archive
from .errors import ResultsError
from .export import StatsResult, stats
from .inputs import Inputs, find_inputs
from .parsing import ParseResult, Problem, parse
from .resources import Resources

__all__ = ["ArchiveResult", "Inputs", "ParseResult", "Problem", "Resources", "ResultsError", "StatsResult",
           "find_inputs", "parse", "sha256_file", "stats", "verify_archive", "write_archive"]
