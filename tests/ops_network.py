"""A generated result set of an OPS network run, as OMNeT++ 6 writes it for ComNets-Bremen/OPS.

`python -m omnetpp_results generate` writes Net60-like sets only; OPS runs record their statistics
with @statistic on the network module (OPSNetwork), which the `ops` preset selects. This writes one
such run: a .sca with every preset statistic on the network (one left unrecorded, one -nan) plus the
same names on hosts (which the preset must not pick), a .vec, omnetpp.ini, the Cmdenv log and the
`/usr/bin/time -v` file OPS's runs carry. Deterministic for a seed.
"""
from __future__ import annotations

import random
from pathlib import Path

from omnetpp_results.selection import load_ops

NETWORK = "OPSNetwork"
RUN_ID = "{config}-0-20261121-10:00:00-{pid}"


def _header(run_id: str, config: str, sim_time: float, seed: int) -> list[str]:
    attrs = [("configname", config), ("datetime", "20261121-10:00:00"), ("datetimef", "20261121-100000"),
             ("experiment", config), ("inifile", "omnetpp.ini"), ("iterationvars", '""'),
             ("iterationvarsd", '""'), ("iterationvarsf", '""'), ("measurement", '""'), ("network", NETWORK),
             ("processid", run_id.rsplit("-", 1)[1]), ("repetition", "0"), ("replication", "#0"),
             ("resultdir", "results"), ("runnumber", "0"), ("seedset", str(seed))]
    return (["version 3", f"run {run_id}"] + [f"attr {k} {v}" for k, v in attrs]
            + [f"config sim-time-limit {sim_time:g}s", f"config network {NETWORK}", ""])


def _value(rng: random.Random, type_: str) -> str:
    return str(rng.randint(0, 5_000_000)) if type_ == "int" else "%.14g" % rng.uniform(0.001, 5000.0)


def write_ops_results(folder: Path, *, config: str = "Benchmark-04", hosts: int = 4, sim_time: float = 3600.0,
                      seed: int = 1, max_rss_kb: int = 1_843_212, wall: str = "1:02:03.45") -> Path:
    rng = random.Random(seed)
    run_id = RUN_ID.format(config=config, pid=4000 + seed)
    header = _header(run_id, config, sim_time, seed)
    preset = load_ops()
    sca = list(header)
    for i in range(hosts):  # per-host values of the same statistics: not what the preset reports
        sca.append(f"par {NETWORK}.host[{i}].app typename \"\\\"KHeraldApp\\\"\"")
        for s in preset[:10]:
            sca += [f"scalar {NETWORK}.host[{i}].app {s.variable}:{s.field} {_value(rng, s.type)}"]
    for n, s in enumerate(preset):
        if n == len(preset) - 1:
            continue  # a statistic the run did not record
        value = "-nan" if n == len(preset) - 2 else _value(rng, s.type)
        sca += [f"scalar {NETWORK} {s.variable}:{s.field} {value}", f"attr recordingmode {s.field}",
                f'attr title "{s.name}"'] + ([f"attr unit {s.unit}"] if s.unit else [])
    sca += [f"statistic {NETWORK}.host[0].app hopCount:stats", "field count 3", "field mean 2", "field stddev 1",
            "field min 1", "field max 3", "field sum 6", "field sqrsum 14", "attr recordingmode stats", "", ""]
    vec = list(header) + [f"vector 0 {NETWORK} {preset[3].variable}:vector ETV", "attr recordingmode vector",
                          f"vector 1 {NETWORK}.host[0].app {preset[3].variable}:vector ETV"]
    total, event = 0, 0
    for k in range(200):
        total += rng.randint(0, 4000)
        event += rng.randint(1, 50)
        vec.append(f"{k % 2}\t{event}\t{sim_time * k / 200:.12g}\t{total}")
    results = folder / "results"
    results.mkdir(parents=True, exist_ok=True)
    (results / f"{config}-#0.sca").write_text("\n".join(sca) + "\n")
    (results / f"{config}-#0.vec").write_text("\n".join(vec) + "\n\n")
    (folder / "omnetpp.ini").write_text(f"[General]\nnetwork = {NETWORK}\n\n[Config {config}]\n"
                                        f"sim-time-limit = {sim_time:g}s\n")
    (folder / "run0.stdout.log").write_text("\n".join([
        "OMNeT++ Discrete Event Simulation  (C) 1992-2024 Andras Varga, OpenSim Ltd.",
        f"Preparing for running configuration {config}, run #0...", f"Assigned runID={run_id}",
        f'Setting up network "{NETWORK}"...', "Running simulation...",
        f"** Event #{event}   t={sim_time:g}   Elapsed: 3723.45s (62m 03s)  100% completed  (100% total)",
        f"     Speed:     ev/sec={event / 3723.45:.6g}   simsec/sec={sim_time / 3723.45:.6g}   "
        f"ev/simsec={event / sim_time:.6g}",
        "     Messages:  created: 51234   present: 321   in FES: 77", "",
        f"<!> Simulation time limit reached -- at t={sim_time:g}s, event #{event}", "", "End.", ""]))
    (folder / "run0.time.txt").write_text("".join(f"\t{line}\n" for line in [
        f'Command being timed: "./ops-simu -u Cmdenv -c {config}"', "User time (seconds): 3690.12",
        "System time (seconds): 12.30", "Percent of CPU this job got: 99%",
        f"Elapsed (wall clock) time (h:mm:ss or m:ss): {wall}", "Average shared text size (kbytes): 0",
        f"Maximum resident set size (kbytes): {max_rss_kb}", "Exit status: 0"]))
    return results / f"{config}-#0.sca"
