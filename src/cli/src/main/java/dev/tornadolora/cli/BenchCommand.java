package dev.tornadolora.cli;

import dev.tornadolora.bench.BenchResult;
import dev.tornadolora.bench.BenchRunner;
import dev.tornadolora.bench.BenchTable;
import dev.tornadolora.bench.DeviceListing;
import dev.tornadolora.bench.ModelStep;
import dev.tornadolora.bench.Workload;
import dev.tornadolora.io.AtomicFiles;
import dev.tornadolora.io.OutputGuard;
import dev.tornadolora.device.Device;
import dev.tornadolora.kernels.LoraBackend;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

import java.io.IOException;
import java.io.PrintWriter;
import java.lang.management.ManagementFactory;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import java.util.stream.Collectors;

/**
 * Measures forward and forward+backward of a LoRA layer, and a model's whole training step, on each device, after
 * checking their outputs.
 */
@Command(name = "bench", sortOptions = false, mixinStandardHelpOptions = true, description = {
        "Benchmarks a LoRA layer (torchtune LoRALinear, alpha = 2*rank, no bias or",
        "dropout) on each device: checks its outputs against the JVM backend (relative",
        "max-norm, every output), warms up, then times calls (median, min, max).",
        "A device whose outputs differ is marked FAILED and the exit code is 1.",
        "",
        "One call is what training does per layer and step: forward, or forward then",
        "backward (dx, dA, dB). FLOPs per call (T tokens, rank r):",
        "  forward           2*T*in*out + 2*T*r*(in+out)",
        "  forward_backward  4*T*in*out + 6*T*r*(in+out)",
        "GB/s: base-weight bytes read per call / time: (1 pass forward, 2 passes",
        "forward_backward) x in*out x 4 bytes (fp32) or ~0.52 bytes (nf4).",
        "vs jvm: the JVM backend's median time / this device's. first ms: the first",
        "call (JIT, moving the base to the device); compile, kernel, transfer:",
        "TornadoVM's profiler (compile within the first call; medians of the timed).",
        "",
        "step: finetune's optimizer step (forward, loss, backward, clipping, AdamW) of a",
        "random Llama (--step-shapes: bench = hidden 1024, 16/4 heads, head_dim 64,",
        "intermediate 2816, 4 layers, vocab 8192, 2 x 256 tokens; small = a test's size)",
        "with LoRA on q,v or all seven projections (--step-modules), fp32, NF4 or BF16 base",
        "(--bases), as finetune runs it on the device (TornadoVM: the whole-step device",
        "plan). Checked: 3 steps from the same start, losses within 1e-5 relative of",
        "the JVM backend's; moved: bytes in/out per step by TornadoVM's profiler.",
        ""})
final class BenchCommand implements Callable<Integer> {

    @Spec
    CommandSpec spec;

    @Option(names = "--device", paramLabel = "D",
            description = "device to measure, repeatable (default: jvm and every TornadoVM device)")
    List<String> devices;

    @Option(names = "--ops", split = ",", paramLabel = "OP", defaultValue = "forward,forward_backward,step",
            description = "forward, forward_backward, step (default ${DEFAULT-VALUE})")
    List<String> ops;

    @Option(names = "--bases", split = ",", paramLabel = "B", defaultValue = "fp32,nf4",
            description = "fp32, nf4, bf16 (steps only: a BF16 checkpoint kept 16-bit) (default ${DEFAULT-VALUE})")
    List<String> bases;

    @Option(names = "--tokens", split = ",", paramLabel = "T", defaultValue = "1,512",
            description = "tokens per call (default ${DEFAULT-VALUE})")
    List<Integer> tokens;

    @Option(names = "--dims", split = ",", paramLabel = "D", defaultValue = "1024,4096",
            description = "layer shapes: D (in = out = D) or INxOUT (default ${DEFAULT-VALUE})")
    List<String> dims;

    @Option(names = "--step-shapes", split = ",", paramLabel = "S", defaultValue = "bench",
            description = "models of the step workloads: bench, small (default ${DEFAULT-VALUE})")
    List<String> stepShapes;

    @Option(names = "--step-modules", split = ",", paramLabel = "M", defaultValue = "qv,all",
            description = "LoRA on qv (q_proj, v_proj) or all seven projections (default ${DEFAULT-VALUE})")
    List<String> stepModules;

    @Option(names = "--rank", paramLabel = "R", defaultValue = "16", description = "LoRA rank (default ${DEFAULT-VALUE})")
    int rank;

    @Option(names = "--reps", paramLabel = "N", defaultValue = "20",
            description = "timed calls at most (default ${DEFAULT-VALUE})")
    int reps;

    @Option(names = "--min-reps", paramLabel = "N", defaultValue = "3",
            description = "timed calls at least, whatever --budget (default ${DEFAULT-VALUE})")
    int minReps;

    @Option(names = "--warmup", paramLabel = "N", defaultValue = "2",
            description = "untimed calls after the checked first one; none when that"
                    + " call took longer than --budget (default ${DEFAULT-VALUE})")
    int warmup;

    @Option(names = "--budget", paramLabel = "S", defaultValue = "2",
            description = "seconds of warm-up + timing per workload and device; timing stops"
                    + " there once --min-reps calls are timed (default ${DEFAULT-VALUE})")
    double budget;

    @Option(names = "--tolerance", paramLabel = "E", defaultValue = "1e-4",
            description = "max |device - jvm| / max |jvm| per output (default ${DEFAULT-VALUE})")
    double tolerance;

    @Option(names = "--seed", paramLabel = "S", defaultValue = "0", description = "seeds layers and inputs (default ${DEFAULT-VALUE})")
    long seed;

    @Option(names = "--json", paramLabel = "FILE", defaultValue = "out/bench/bench.json",
            description = "results, one record per device and workload (default ${DEFAULT-VALUE})")
    Path json;

    @Option(names = "--csv", paramLabel = "FILE", defaultValue = "out/bench/bench.csv",
            description = "the same as CSV (default ${DEFAULT-VALUE})")
    Path csv;

    @Option(names = "--png", paramLabel = "FILE", defaultValue = "out/bench/bench.png",
            description = "bar chart of GFLOP/s per workload and device (default ${DEFAULT-VALUE})")
    Path png;

    @Override
    public Integer call() throws IOException {
        new OutputGuard().file("--json", json).file("--csv", csv).file("--png", png);
        List<Workload.Op> opList = ops.stream().map(Workload.Op::parse).distinct().toList();
        List<Workload.Base> baseList = bases.stream().map(Workload.Base::parse).distinct().toList();
        if (baseList.contains(Workload.Base.BF16) && !opList.contains(Workload.Op.STEP)) {
            throw new picocli.CommandLine.ParameterException(spec.commandLine(),
                    "--bases bf16 is a step workload's base (the step's model as a BF16 checkpoint): add step to --ops");
        }
        List<Workload> workloads = new ArrayList<>(Workload.grid(opList, baseList, tokens.stream().distinct().toList(),
                dims.stream().map(Workload.Shape::parse).distinct().toList(), rank));
        if (opList.contains(Workload.Op.STEP)) {
            stepShapes.forEach(s -> ModelStep.of(s, false));  // a wrong name is refused before anything runs
            workloads.addAll(Workload.steps(baseList, stepShapes.stream().distinct().toList(),
                    stepModules.stream().map(ModelStep::parseModules).distinct().toList(), rank));
        }
        BenchRunner.Config config = new BenchRunner.Config(reps, Math.min(minReps, reps), warmup, budget, seed,
                tolerance, BenchRunner.Config.defaults().referenceCheckMaxFlops());
        List<String> names = devices == null || devices.isEmpty() ? DeviceListing.current().deviceNames()
                : new ArrayList<>(new LinkedHashSet<>(devices));
        List<Device> measured = new ArrayList<>();
        Device own = null;
        try {
            for (String name : names) {
                measured.add(BackendProperties.open(name));
            }
            // The oracle every device must match: the measured jvm device, else a jvm device of its own.
            Device oracle = measured.stream().filter(d -> d.backend().name().equals("jvm")).findFirst().orElse(null);
            if (oracle == null) {
                oracle = own = BackendProperties.open("jvm");
            }
            return run(spec.commandLine().getOut(), spec.commandLine().getErr(), new BenchRunner(config, oracle.backend()),
                    workloads, measured.stream().map(Device::backend).toList());
        } finally {
            measured.forEach(Device::close);
            if (own != null) own.close();
        }
    }

    /** Runs, printing rows as they come, writes the files, and returns 1 when a device failed verification. */
    int run(PrintWriter out, PrintWriter err, BenchRunner runner, List<Workload> workloads, List<LoraBackend> kernels)
            throws IOException {
        if (workloads.isEmpty() || kernels.isEmpty()) {
            throw new IllegalArgumentException("nothing to run: " + workloads.size() + " workloads on " + kernels.size() + " devices");
        }
        List<String> names = kernels.stream().map(LoraBackend::name).toList();
        out.printf(Locale.ROOT, "tornado-lora bench: %d workloads x %d devices (%s), rank %d; %s%n", workloads.size(),
                names.size(), String.join(", ", names), workloads.get(0).rank(), loadAverage());
        BenchTable table = new BenchTable(names);
        out.println(table.header());
        out.flush();
        long start = System.nanoTime();
        List<BenchResult> results = runner.run(workloads, kernels, r -> {
            out.println(table.row(r));
            out.flush();
        });
        AtomicFiles.write(json, o -> o.write(BenchReport.json(results)));
        AtomicFiles.write(csv, o -> o.write(BenchReport.csv(results)));
        AtomicFiles.write(png, o -> o.write(BenchReport.png(results)));
        out.printf(Locale.ROOT, "%.1f s; %s; wrote %s, %s, %s%n", (System.nanoTime() - start) / 1e9, loadAverage(),
                json, csv, png);
        out.flush();
        List<BenchResult> failed = results.stream().filter(r -> !r.verified()).toList();
        if (!failed.isEmpty()) {
            err.printf(Locale.ROOT, "tornado-lora bench: FAILED: %d of %d results did not verify: %s%n", failed.size(),
                    results.size(), failed.stream().map(r -> r.device() + " " + r.workload().label())
                            .collect(Collectors.joining("; ")));
            err.flush();
            return 1;
        }
        return 0;
    }

    private static String loadAverage() {
        double load = ManagementFactory.getOperatingSystemMXBean().getSystemLoadAverage();
        return load < 0 ? "load average unknown" : String.format(Locale.ROOT, "load average %.2f on %d cores", load,
                Runtime.getRuntime().availableProcessors());
    }
}
