package dev.tornadolora.cli;

import dev.tornadolora.testing.TestDevices;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tornadolora.bench.BenchRunner;
import dev.tornadolora.bench.BenchFixtures;
import dev.tornadolora.bench.Workload;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import java.util.stream.Collectors;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class BenchCommandTest {
    static final byte[] PNG_SIGNATURE = {(byte) 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    static final List<Workload> WORKLOADS = Workload.grid(List.of(Workload.Op.FORWARD, Workload.Op.FORWARD_BACKWARD),
            List.of(Workload.Base.FP32), List.of(2), List.of(new Workload.Shape(64, 32)), 4);

    @TempDir
    Path dir;

    private BenchCommand command() {
        BenchCommand c = new BenchCommand();
        c.json = dir.resolve("r/bench.json");
        c.csv = dir.resolve("r/bench.csv");
        c.png = dir.resolve("r/bench.png");
        return c;
    }

    @Test
    void aWrongDeviceFailsTheCommandAfterTheFilesAreWritten() throws Exception {
        StringWriter out = new StringWriter(), err = new StringWriter();
        int code = command().run(new PrintWriter(out), new PrintWriter(err), new BenchRunner(BenchFixtures.ONE_CALL, TestDevices.jvm().backend()),
                WORKLOADS, List.of(TestDevices.jvm().backend(), BenchFixtures.perturbed("wrong", 1e-2f, 0)));
        assertEquals(1, code);
        assertTrue(err.toString().contains("FAILED: 2 of 4 results did not verify"), err.toString());
        assertEquals(2, out.toString().lines().filter(l -> l.startsWith("wrong") && l.contains("FAILED")).count(), out.toString());
        JsonNode json = new ObjectMapper().readTree(dir.resolve("r/bench.json").toFile());
        assertEquals(4, json.size());
        for (JsonNode r : json) {
            assertEquals(r.get("device").asText().equals("jvm"), r.get("verified").asBoolean(), r.toString());
        }
        checkCsvAndPng(4);
    }

    @Test
    void theJvmAloneVerifiesAndWritesTheThreeFiles() throws Exception {
        Files.createDirectories(dir.resolve("r"));
        Files.writeString(dir.resolve("r/bench.csv"), "old");
        StringWriter out = new StringWriter(), err = new StringWriter();
        int code = command().run(new PrintWriter(out), new PrintWriter(err), new BenchRunner(BenchFixtures.ONE_CALL, TestDevices.jvm().backend()),
                WORKLOADS, List.of(TestDevices.jvm().backend()));
        assertEquals(0, code, err.toString());
        assertEquals("", err.toString());
        checkCsvAndPng(2);
        // Written atomically: the old file is replaced and no temporary is left beside the results.
        try (Stream<Path> files = Files.list(dir.resolve("r"))) {
            assertEquals(Set.of("bench.json", "bench.csv", "bench.png"),
                    files.map(p -> p.getFileName().toString()).collect(Collectors.toSet()));
        }
    }

    private void checkCsvAndPng(int rows) throws Exception {
        List<String> csv = Files.readAllLines(dir.resolve("r/bench.csv"), StandardCharsets.UTF_8);
        assertEquals(String.join(",", BenchReport.columnNames()), csv.get(0));
        assertEquals(rows + 1, csv.size());
        assertTrue(csv.get(1).startsWith("jvm,forward,fp32,2,64,32,4,"), csv.get(1));
        byte[] png = Files.readAllBytes(dir.resolve("r/bench.png"));
        assertArrayEquals(PNG_SIGNATURE, Arrays.copyOf(png, 8));
    }

    @Test
    void benchRunsFromTheCommandLine() throws Exception {
        CliRun run = CliRun.of("bench", "--dims", "64", "--bases", "fp32", "--tokens", "2", "--rank", "4", "--reps", "1",
                "--warmup", "0", "--step-shapes", "small", "--step-modules", "qv", "--device", "jvm",
                "--json", dir.resolve("b.json").toString(), "--csv", dir.resolve("b.csv").toString(),
                "--png", dir.resolve("b.png").toString());
        assertEquals(0, run.exitCode(), run.err());
        assertTrue(run.out().contains("fwd+bwd fp32"), run.out());
        JsonNode rows = new ObjectMapper().readTree(dir.resolve("b.json").toFile());
        assertEquals(3, rows.size(), rows.toString());  // forward, forward_backward, then the model step
        JsonNode step = rows.get(2);
        assertEquals("step", step.get("op").asText(), step.toString());
        assertEquals("small qv", step.get("model").asText(), step.toString());
        assertEquals(64, step.get("tokens").asInt(), step.toString());  // 2 × 32
        assertTrue(step.get("verified").asBoolean() && step.get("ms_median").asDouble() > 0, step.toString());
        assertEquals("none", step.get("reference").asText(), step.toString());  // the JVM backend is the reference
        assertTrue(step.get("copy_in_bytes").isNull() && step.get("device_bytes").isNull(), step.toString());
        assertTrue(run.out().contains("step    fp32     64    small qv"), run.out());
    }

    @Test
    void badOptionsAreOneLineErrors() {
        CliRun nf4 = CliRun.of("bench", "--dims", "64", "--bases", "nf4", "--device", "jvm");
        assertEquals(1, nf4.exitCode());
        assertTrue(nf4.err().contains("multiple of 16384"), nf4.err());
        CliRun device = CliRun.of("bench", "--device", "nope");
        assertEquals(1, device.exitCode());
        assertTrue(device.err().contains("unknown device 'nope'; available: jvm"), device.err());
        CliRun op = CliRun.of("bench", "--ops", "backward");
        assertTrue(op.err().contains("expected forward, forward_backward or step"), op.err());
        CliRun shape = CliRun.of("bench", "--ops", "step", "--step-shapes", "huge", "--device", "jvm");
        assertEquals(1, shape.exitCode());
        assertTrue(shape.err().contains("step shape 'huge': expected bench or small"), shape.err());
        CliRun bf16 = CliRun.of("bench", "--ops", "forward", "--bases", "bf16", "--device", "jvm");
        assertEquals(2, bf16.exitCode(), bf16.err());
        assertTrue(bf16.err().contains("--bases bf16 is a step workload's base"), bf16.err());
    }

    @Test
    void devicesListsTheJvmBackend() throws Exception {
        CliRun text = CliRun.of("devices");
        assertEquals(0, text.exitCode(), text.err());
        assertTrue(text.out().startsWith("jvm"), text.out());
        assertTrue(text.out().contains(Runtime.getRuntime().availableProcessors() + " cores"), text.out());
        JsonNode json = new ObjectMapper().readTree(CliRun.of("devices", "--json").out());
        JsonNode jvm = json.get("devices").get(0);
        assertEquals("jvm", jvm.get("name").asText());
        assertEquals(Runtime.getRuntime().availableProcessors(), jvm.get("cores").asInt());
        assertEquals(jdk.incubator.vector.FloatVector.SPECIES_PREFERRED.length(), jvm.get("vector_floats").asInt());
    }
}
