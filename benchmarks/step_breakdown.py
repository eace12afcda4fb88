#!/usr/bin/python3
"""Where the JVM Llama step's time goes, two builds side by side in one run (no PyTorch):

    benchmarks/step_breakdown.py --before OLD/benchmarks.jar [--after benchmarks/target/benchmarks.jar]
                                 [--rounds 3] [--steps 3] [WORKLOAD ...]

Each build's Compare server (benchmarks/compare.py's JVM side) holds the workloads (default: the four llama-*-step
ones); the two alternate workload by workload for --rounds rounds, each timing the step (`run`, median) and its
ops (`profile`: OpTimer wall time per op, and the step's projections run alone); per build and workload the round
with the fastest step is kept. Printed: ms per op and share of the step, then the projections' GFLOP/s in the
step and alone (compare.print_projections). Make the old jar from a checkout of the older commit with
`mvn -q -DskipTests -pl benchmarks -am package`.
"""
import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import compare  # noqa: E402  (the JVM side, the FLOP counts and the projections' table)

WORKLOADS = ["llama-fp32-step", "llama-fp32-step-all", "llama-qlora-step", "llama-qlora-step-all"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("workloads", nargs="*", default=WORKLOADS)
    ap.add_argument("--before", required=True, help="benchmarks.jar of the older build")
    ap.add_argument("--after", default=str(compare.HERE / "target" / "benchmarks.jar"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=3, help="profiled steps per round")
    ap.add_argument("--seconds", type=float, default=3.0, help="timing budget of the step per round")
    ap.add_argument("--java", default=os.path.join(os.environ.get("JAVA_HOME", "/usr"), "bin", "java"))
    args = ap.parse_args()
    sides = {}
    for label, jar in (("before", args.before), ("after", args.after)):
        sides[label] = compare.JvmSide(argparse.Namespace(jar=jar, java=args.java, threads=os.cpu_count()))
    peak = max(s.ask("peak")["peak_gflops"] for s in sides.values())
    load0 = os.getloadavg()[0]
    best = {label: {} for label in sides}
    for name in args.workloads:
        for rnd in range(args.rounds):
            for label, side in sides.items():
                ms = side.ask(f"run {name} {args.seconds}")["ms"]
                p = side.ask(f"profile {name} {args.steps}")
                print(f"  round {rnd + 1} {name:22s} {label:6s} step {ms:8.1f} ms, profiled {p['step_ms']:8.1f} ms"
                      f"   load {os.getloadavg()[0]:.2f}", file=sys.stderr, flush=True)
                if name not in best[label] or ms < best[label][name][0]:
                    best[label][name] = (ms, p)
        for side in sides.values():
            side.ask(f"drop {name}")
    peak = max([peak] + [s.ask("peak")["peak_gflops"] for s in sides.values()])
    for side in sides.values():
        side.close()
    print(f"\n{os.cpu_count()} threads; fp32 peak {peak:.1f} GFLOP/s; load average {load0:.2f} before, "
          f"{os.getloadavg()[0]:.2f} after; per build and workload the round with the fastest step")
    for name in args.workloads:
        print()
        ops = list(best["after"][name][1]["op_ms"])
        print(f"{name:24s} {'step ms':>8s} {'profiled':>9s} " + " ".join(f"{o:>14s}" for o in ops))
        for label in sides:
            ms, p = best[label][name]
            print(f"  {label:22s} {ms:8.1f} {p['step_ms']:9.1f} " + " ".join(
                f"{p['op_ms'].get(o, 0):8.1f} {100 * p['op_ms'].get(o, 0) / p['step_ms']:4.1f}%" for o in ops)
                + (f"   gc {p['gc_ms']:.1f} ms ({p['gc_count']:.2f} GCs, {p['allocated_mb']:.0f} MB allocated)"
                   if "gc_ms" in p else ""))
    for label in sides:
        print(f"\n{label}:", end="")
        compare.print_projections({name: best[label][name][1] for name in args.workloads}, peak)


if __name__ == "__main__":
    main()
