package dev.tornadolora.bench;

import dev.tornadolora.testing.TestDevices;
import dev.tornadolora.cli.BenchReport;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tornadolora.kernels.LoraBackend;
import dev.tornadolora.kernels.ScalarLoraKernels;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;

import static dev.tornadolora.bench.Workload.Base.FP32;
import static dev.tornadolora.bench.Workload.Base.NF4;
import static dev.tornadolora.bench.Workload.Op.FORWARD;
import static dev.tornadolora.bench.Workload.Op.FORWARD_BACKWARD;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

class BenchRunnerTest {
    static final BenchRunner.Config TINY = BenchFixtures.ONE_CALL;

    /** fp32 at 64x64 and nf4 at 128x128 (the smallest NF4 layer: 64 x 256 elements), 1 and 3 tokens, both ops. */
    static List<Workload> tinyWorkloads() {
        List<Workload> w = new ArrayList<>(Workload.grid(List.of(FORWARD, FORWARD_BACKWARD), List.of(FP32),
                List.of(1, 3), List.of(new Workload.Shape(64, 64)), 4));
        w.addAll(Workload.grid(List.of(FORWARD, FORWARD_BACKWARD), List.of(NF4), List.of(3),
                List.of(new Workload.Shape(128, 128)), 4));
        return w;
    }

    static List<BenchResult> run(LoraBackend... devices) {
        return new BenchRunner(TINY, TestDevices.jvm().backend()).run(tinyWorkloads(), List.of(devices), r -> {});
    }

    @Test
    void flopsAndWeightBytesFollowTheDocumentedFormula() {
        // T=2, in=3, out=5, r=1: forward 2*2*3*5 + 2*2*1*(3+5) = 60 + 32; both 2*60 + 3*32.
        assertEquals(92, new Workload(FORWARD, FP32, 2, 3, 5, 1).flops());
        assertEquals(216, new Workload(FORWARD_BACKWARD, FP32, 2, 3, 5, 1).flops());
        assertEquals(4.0 * 3 * 5, new Workload(FORWARD, FP32, 2, 3, 5, 1).weightBytes(4));
        assertEquals(2 * 0.5 * 3 * 5, new Workload(FORWARD_BACKWARD, NF4, 2, 3, 5, 1).weightBytes(0.5));
    }

    @Test
    void jsonHasOneRecordPerDeviceAndWorkloadWithTheSchema() throws Exception {
        List<BenchResult> results = run(TestDevices.jvm().backend(), new BenchFixtures.Profiled());
        JsonNode json = new ObjectMapper().readTree(BenchReport.json(results));
        assertTrue(json.isArray());
        assertEquals(2 * tinyWorkloads().size(), json.size());
        Set<String> devices = new TreeSet<>();
        for (JsonNode r : json) {
            assertEquals(new TreeSet<>(BenchReport.columnNames()), fieldNames(r));
            devices.add(r.get("device").asText());
            assertTrue(Set.of("forward", "forward_backward").contains(r.get("op").asText()), r.toString());
            assertTrue(Set.of("fp32", "nf4").contains(r.get("base").asText()), r.toString());
            for (String f : List.of("tokens", "in_dim", "out_dim", "rank", "reps")) {
                assertTrue(r.get(f).isInt(), f + " in " + r);
            }
            for (String f : List.of("ms_median", "ms_min", "ms_max", "ms_first", "gflops", "gb_per_s", "flops",
                    "weight_bytes", "speedup_vs_jvm", "max_rel_error")) {
                assertTrue(r.get(f).isDouble() && r.get(f).asDouble() >= 0, f + " in " + r);
            }
            assertTrue(r.get("ms_min").asDouble() <= r.get("ms_median").asDouble());
            assertTrue(r.get("ms_median").asDouble() <= r.get("ms_max").asDouble());
            assertEquals(r.get("flops").asDouble() / (r.get("ms_median").asDouble() * 1e6), r.get("gflops").asDouble(), 1e-9);
            assertTrue(r.get("verified").isBoolean() && r.get("verified").asBoolean(), r.toString());
            assertTrue(r.get("error").isNull());
            boolean jvm = r.get("device").asText().equals("jvm");
            // The JVM backend is checked against the scalar reference, the others against the JVM backend.
            assertEquals(jvm ? "reference" : "jvm", r.get("reference").asText());
            for (String f : List.of("compile_ms", "kernel_ms", "transfer_ms")) {
                assertTrue(jvm ? r.get(f).isNull() : r.get(f).isDouble(), f + " in " + r);
            }
            if (jvm) {
                assertEquals(1.0, r.get("speedup_vs_jvm").asDouble());
            }
        }
        assertEquals(Set.of("jvm", "fake:0:0"), devices);
    }

    @Test
    void profilerTimesAreSummedOverForwardAndBackwardAndCompileCountsOnlyTheFirstCall() {
        List<BenchResult> results = run(new BenchFixtures.Profiled());
        BenchResult first = results.get(0), secondOnSameLayer = results.get(1);
        assertEquals(FORWARD, first.workload().op());
        assertEquals(7, first.compileMs());
        assertEquals(1, first.kernelMs());
        assertEquals(0.25, first.transferMs());
        assertEquals(FORWARD_BACKWARD, secondOnSameLayer.workload().op());
        assertEquals(0, secondOnSameLayer.compileMs());  // the layer's kernels were compiled by the previous workload
        assertEquals(2, secondOnSameLayer.kernelMs());
        assertEquals(0.5, secondOnSameLayer.transferMs());
        // Without the JVM backend measured there is no baseline for a speedup.
        assertTrue(Double.isNaN(first.speedupVsJvm()));
    }

    @Test
    void aDeviceWithAWrongOutputIsReportedFailed() {
        List<BenchResult> results = run(TestDevices.jvm().backend(), BenchFixtures.perturbed("wrong-y", 1e-2f, 0));
        for (BenchResult r : results) {
            if (r.device().equals("jvm")) {
                assertTrue(r.verified(), r.toString());
            } else {
                assertFalse(r.verified(), r.toString());
                assertEquals("FAILED", r.status());
                assertEquals(1e-2, r.maxRelError(), 1e-3);
                assertTrue(r.error().contains("differ from jvm"), r.error());
                assertTrue(new BenchTable(List.of("jvm", "wrong-y")).row(r).contains("FAILED: outputs differ"));
            }
        }
    }

    @Test
    void everyBackwardOutputIsChecked() {
        List<BenchResult> results = run(TestDevices.jvm().backend(), BenchFixtures.perturbed("wrong-dx", 0, 1e-2f));
        for (BenchResult r : results) {
            boolean expectOk = r.device().equals("jvm") || r.workload().op() == FORWARD;
            assertEquals(expectOk, r.verified(), r.toString());
        }
    }

    @Test
    void differencesWithinTheToleranceAreAccepted() {
        // fp32 summation order differs between devices: a relative 1e-6 is not a failure.
        List<BenchResult> results = run(TestDevices.jvm().backend(), BenchFixtures.perturbed("close", 1e-6f, 1e-6f));
        assertTrue(results.stream().allMatch(BenchResult::verified), results.toString());
    }

    @Test
    void aDeviceThatThrowsIsReportedFailedAndTheOthersStillRun() {
        List<BenchResult> results = run(BenchFixtures.throwing("broken"), TestDevices.jvm().backend());
        assertEquals("jvm", results.get(0).device());  // the JVM backend runs first: it is the reference
        for (BenchResult r : results) {
            assertEquals(r.device().equals("jvm"), r.verified(), r.toString());
        }
        BenchResult broken = results.get(1);
        assertTrue(broken.error().contains("device lost"), broken.error());
        assertTrue(Double.isNaN(broken.msMedian()));
    }

    @Test
    void theJvmBackendItselfIsCheckedAgainstTheScalarReference() {
        // A wrong oracle: its own rows fail against the scalar reference and the other devices have nothing to match.
        LoraBackend wrongJvm = BenchFixtures.perturbed("jvm", 1e-2f, 0);
        List<BenchResult> results = new BenchRunner(TINY, wrongJvm, ScalarLoraKernels.INSTANCE)
                .run(tinyWorkloads(), List.of(wrongJvm, new BenchFixtures.Profiled()), r -> {});
        for (BenchResult r : results) {
            assertFalse(r.verified(), r.toString());
        }
        assertTrue(results.get(0).error().contains("differ from reference"), results.get(0).error());
        assertTrue(results.get(1).error().contains("no reference"), results.get(1).error());
    }

    @Test
    void anNf4ShapeThatCannotBeQuantizedIsRejectedBeforeRunning() {
        var e = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class, () -> new BenchRunner(TINY, TestDevices.jvm().backend())
                .run(List.of(new Workload(FORWARD, NF4, 1, 64, 64, 4)), List.of(TestDevices.jvm().backend()), r -> {}));
        assertTrue(e.getMessage().contains("multiple of 16384"), e.getMessage());
    }

    private static Set<String> fieldNames(JsonNode r) {
        Set<String> names = new TreeSet<>();
        r.fieldNames().forEachRemaining(names::add);
        return names;
    }
}
