package dev.tornadolora.benchmarks;

import dev.tornadolora.device.Device;
import dev.tornadolora.device.DeviceOptions;
import org.openjdk.jmh.annotations.TearDown;
import dev.tornadolora.tensor.Tensor;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;

import java.util.concurrent.TimeUnit;

/**
 * LoRALinear on the JVM backend: forward and forward + backward, fp32 and NF4 bases, 1 and 512 tokens,
 * in = out = 4096 and 1024, rank 16. Run: {@code ./build bench} (all), or e.g.
 * {@code ./build bench LoraBenchmark.forward -p base=nf4 -p tokens=1 -f1 -wi 2 -i 3}.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 5, time = 2)  // vector kernels run interpreted until C2 compiles them
@Measurement(iterations = 5, time = 2)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "-XX:+UseParallelGC", "-Xmx8g",
        "-XX:+UseTransparentHugePages"})  // as ./tornado-lora where the kernel offers THP
public class LoraBenchmark {

    @Param({"fp32", "nf4"})
    public String base;

    @Param({"4096", "1024"})
    public int dim;

    @Param({"1", "512"})
    public int tokens;

    private Device device;
    private LayerWorkload forward;
    private LayerWorkload forwardBackward;

    /** The {@code jvm} device on {@code -Dtornadolora.threads} threads (default: all cores), as the CLI maps it. */
    @Setup(Level.Trial)
    public void setup() {
        DeviceOptions defaults = DeviceOptions.defaults();
        device = Device.open("jvm", defaults.withThreads(Integer.getInteger("tornadolora.threads", defaults.threads())));
        forward = new LayerWorkload(base, dim, tokens, false).on(device.backend());
        forwardBackward = new LayerWorkload(base, dim, tokens, true).on(device.backend());
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        device.close();
    }

    @Benchmark
    public Tensor forward() {
        return forward.run();
    }

    @Benchmark
    public Tensor forwardBackward() {
        return forwardBackward.run();
    }
}
