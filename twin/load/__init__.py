"""`twin load`: a load generator for the hub, and its measurements.

Cars on their own websocket vehicle links (the real model) living a day, app users sending an
open-loop command mix, latency from the intended send time into HDR histograms merged exactly
across worker processes; a report as a table, JSON, CSV and an SVG plot, with thresholds for CI.
"""

from ._hist import merge as merge
from ._hist import new_histogram as new_histogram
from ._hist import summary as summary
from ._hubproc import LOAD_HUB_CONFIG as LOAD_HUB_CONFIG
from ._hubproc import FleetMismatch as FleetMismatch
from ._hubproc import provision as provision
from ._hubproc import provision_fleet as provision_fleet
from ._hubproc import reusable_fleet as reusable_fleet
from ._procs import cpu_s as cpu_s
from ._procs import open_files_limit as open_files_limit
from ._procs import rss_kb as rss_kb
from ._profile import COMMANDS as COMMANDS
from ._profile import DEFAULT_PROFILE as DEFAULT_PROFILE
from ._profile import Profile as Profile
from ._profile import load_profile as load_profile
from ._report import Threshold as Threshold
from ._report import build_report as build_report
from ._report import check_thresholds as check_thresholds
from ._report import parse_threshold as parse_threshold
from ._report import write_csv as write_csv
from ._report import write_json as write_json
from ._report import write_svg as write_svg
from ._run import LoadOptions as LoadOptions
from ._run import check_open_files as check_open_files
from ._run import load_main as load_main
from ._run import read_creds as read_creds
from ._run import run_load as run_load
from ._run import select_fleet as select_fleet
from ._run import split_work as split_work
from ._worker import run_worker as run_worker

__all__ = [
    "COMMANDS", "DEFAULT_PROFILE", "LOAD_HUB_CONFIG", "FleetMismatch", "LoadOptions", "Profile", "Threshold", "build_report",
    "check_open_files", "check_thresholds", "cpu_s", "load_main", "load_profile", "merge", "new_histogram",
    "open_files_limit", "parse_threshold", "provision", "provision_fleet", "read_creds", "reusable_fleet", "rss_kb",
    "run_load", "run_worker", "select_fleet", "split_work", "summary", "write_csv", "write_json", "write_svg",
]
