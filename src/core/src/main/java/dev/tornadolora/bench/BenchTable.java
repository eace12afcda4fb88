package dev.tornadolora.bench;

import java.util.Collection;
import java.util.Locale;

/** The results as a terminal table, one row at a time so that rows can be printed as they are measured. */
public final class BenchTable {
    private final String rowFormat;

    /** A table whose device column fits the given names. */
    public BenchTable(Collection<String> deviceNames) {
        int width = Math.max("device".length(), deviceNames.stream().mapToInt(String::length).max().orElse(0));
        rowFormat = "%-" + width + "s  %-7s %-4s %6s %11s  %9s %-21s %8s %7s %7s  %9s %9s %9s %9s  %s";
    }

    public String header() {
        return String.format(Locale.ROOT, rowFormat, "device", "op", "base", "tokens", "shape", "ms/call",
                "[min .. max]", "GFLOP/s", "GB/s", "vs jvm", "first ms", "compile", "kernel", "transfer", "check");
    }

    public String row(BenchResult r) {
        Workload w = r.workload();
        String spread = Double.isNaN(r.msMin()) ? "" : "[" + ms(r.msMin()) + " .. " + ms(r.msMax()) + "]";
        String speedup = Double.isFinite(r.speedupVsJvm()) ? String.format(Locale.ROOT, "%.2fx", r.speedupVsJvm()) : "-";
        return String.format(Locale.ROOT, rowFormat, r.device(), w.op().shortName, w.base().id, w.tokens(),
                w.shapeLabel(), ms(r.msMedian()), spread, fixed(r.gflops()), fixed(r.gbPerSecond()),
                speedup, ms(r.msFirst()), ms(r.compileMs()), ms(r.kernelMs()), ms(r.transferMs()), check(r));
    }

    private static String check(BenchResult r) {
        if (!r.verified()) {
            return "FAILED: " + r.error();
        }
        String ok = r.reference().equals("none") ? "ok (is the reference)"
                : String.format(Locale.ROOT, "ok (vs %s %.1e)", r.reference(), r.maxRelError());
        if (r.deviceBytes() >= 0) {
            ok += String.format(Locale.ROOT, "; device %.1f MiB", r.deviceBytes() / 1048576.0);
        }
        if (r.copyInBytes() >= 0) {
            ok += String.format(Locale.ROOT, "; moved %d B in, %d B out per call", r.copyInBytes(), r.copyOutBytes());
        }
        return r.steady() ? ok : ok + "; NOT STEADY (no steady state within the budget)";
    }

    /** Three significant-ish digits: 0.0812, 1.23, 45.6, 1234. */
    static String ms(double v) {
        if (Double.isNaN(v)) return "-";
        if (v < 1) return String.format(Locale.ROOT, "%.4f", v);
        if (v < 10) return String.format(Locale.ROOT, "%.3f", v);
        if (v < 100) return String.format(Locale.ROOT, "%.2f", v);
        if (v < 1000) return String.format(Locale.ROOT, "%.1f", v);
        return String.format(Locale.ROOT, "%.0f", v);
    }

    private static String fixed(double v) {
        if (!Double.isFinite(v)) return "-";
        return String.format(Locale.ROOT, v < 10 ? "%.2f" : "%.1f", v);
    }
}
