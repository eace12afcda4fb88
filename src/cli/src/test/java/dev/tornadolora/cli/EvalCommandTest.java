package dev.tornadolora.cli;

import dev.tornadolora.io.DType;
import dev.tornadolora.io.SafeTensors;
import dev.tornadolora.io.SafeTensorsWriter;
import dev.tornadolora.tensor.Tensor;
import dev.tornadolora.testing.Golden;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.function.Consumer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

class EvalCommandTest {
    @TempDir
    Path dir;

    /** The eval contract on the PyTorch fixtures without dropout: the fixture file serves as C, X and DY. */
    @ParameterizedTest
    @ValueSource(strings = {"lora_r1", "lora_r4_bias", "lora_r16", "lora_r64_bias", "lora_alpha_ne_rank", "lora_tokens1"})
    void evalMatchesPyTorch(String name) {
        Path fixture = Golden.dir().resolve(name + ".safetensors");
        Path out = dir.resolve("o.safetensors");
        CliRun r = CliRun.of("eval", "--checkpoint", fixture.toString(), "--input", fixture.toString(),
                "--output", out.toString(), "--grad-output", fixture.toString());
        assertEquals(0, r.exitCode(), r.err());
        SafeTensors o = SafeTensors.open(out), g = SafeTensors.open(fixture);
        for (String t : List.of("y", "dx", "lora_a.weight.grad", "lora_b.weight.grad")) {
            assertArrayEquals(g.entry(t).shape(), o.entry(t).shape(), t);
            Golden.assertClose(g.f32(t).data(), o.f32(t).data(), 2e-5, name + " " + t);
        }
    }

    @Test
    void withoutGradOutputOnlyYIsWritten() {
        Path fixture = Golden.dir().resolve("lora_r16.safetensors");
        Path out = dir.resolve("o.safetensors");
        CliRun r = CliRun.of("eval", "--checkpoint", fixture.toString(), "--input", fixture.toString(),
                "--output", out.toString());
        assertEquals(0, r.exitCode(), r.err());
        assertEquals(List.of("y"), List.copyOf(SafeTensors.open(out).names()));
    }

    @Test
    void checkFiniteNamesTheFirstNaNAndWritesNothing() throws IOException {
        Path fixture = Golden.dir().resolve("lora_r16.safetensors");
        Tensor x = SafeTensors.open(fixture).f32("x");
        float[] bad = x.data().clone();
        bad[5] = Float.NaN;
        Path xFile = dir.resolve("x.safetensors");
        new SafeTensorsWriter().f32("x", x.shape(), bad).write(xFile);
        Path out = dir.resolve("o.safetensors");
        CliRun r = CliRun.of("eval", "--checkpoint", fixture.toString(), "--input", xFile.toString(),
                "--output", out.toString(), "--check-finite");
        assertEquals(1, r.exitCode());
        assertEquals("tornado-lora eval: error: non-finite value NaN in x at index 5 (" + java.util.Arrays.toString(
                coordinates(x.shape(), 5)) + " of shape " + java.util.Arrays.toString(x.shape()) + ")\n", r.err());
        assertFalse(Files.exists(out));
        assertEquals(0, CliRun.of("eval", "--checkpoint", fixture.toString(), "--input", xFile.toString(),
                "--output", out.toString()).exitCode(), "without the check, NaN flows through");
    }

    private static int[] coordinates(int[] shape, int index) {
        int[] c = new int[shape.length];
        for (int d = shape.length - 1; d >= 0; d--) {
            c[d] = index % shape[d];
            index /= shape[d];
        }
        return c;
    }

    @Test
    void badInputsFailWithOneLineAndNoOutput() throws IOException {
        Path good = Golden.dir().resolve("lora_r4_bias.safetensors");
        SafeTensors g = SafeTensors.open(good);
        Path c = dir.resolve("c.safetensors");

        assertFails("/nonexistent/c.safetensors: no such file", "/nonexistent/c.safetensors", good, good);

        rewrite(g, c, "lora_a.weight", null);
        assertFails(c + ": missing tensor 'lora_a.weight'", c, good, good);

        rewrite(g, c, "lora_b.weight", w -> w.f32("lora_b.weight", new int[] {64, 5}, new float[320]));
        assertFails(c + ": tensor 'lora_b.weight': expected shape [out, 4] but got [64, 5]", c, good, good);

        rewrite(g, c, "weight", w -> w.f32("weight", new int[] {64, 127}, new float[64 * 127]));
        assertFails(c + ": tensor 'weight': expected shape [64, 128] but got [64, 127]", c, good, good);

        rewrite(g, c, "weight", w -> w.bf16("weight", new int[] {64, 128}, new float[64 * 128]));
        assertFails(c + ": tensor 'weight' has dtype BF16, expected F32", c, good, good);

        rewrite(g, c, "weight", null);
        assertFails(c + ": missing tensor 'weight'", c, good, good);

        rewrite(g, c, "bias", w -> w.f32("bias", new int[] {65}, new float[65]));
        assertFails(c + ": tensor 'bias': expected shape [64] but got [65]", c, good, good);

        copy(g, c, java.util.Map.of("alpha", "sixteen"));
        assertFails(c + ": metadata 'alpha' is not a finite number: 'sixteen'", c, good, good);
        copy(g, c, java.util.Map.of());
        assertFails(c + ": missing metadata 'alpha'", c, good, good);

        Path x = dir.resolve("x.safetensors");
        new SafeTensorsWriter().f32("x", new int[] {2, 100}, new float[200]).write(x);
        assertFails(x + ": tensor 'x': expected shape [..., 128] but got [2, 100]", good, x, good);
        new SafeTensorsWriter().f32("inputs", new int[] {2, 128}, new float[256]).write(x);
        assertFails(x + ": missing tensor 'x'", good, x, good);
        new SafeTensorsWriter().raw("x", DType.I32, new int[] {1, 128}, new byte[512]).write(x);
        assertFails(x + ": tensor 'x' has dtype I32, expected F32", good, x, good);

        Path dy = dir.resolve("dy.safetensors");
        new SafeTensorsWriter().f32("dy", new int[] {2, 3, 63}, new float[2 * 3 * 63]).write(dy);
        assertFails(dy + ": tensor 'dy': expected shape [2, 3, 64] but got [2, 3, 63]", good, good, dy);

        Path junk = Files.write(dir.resolve("junk.safetensors"), "not a safetensors file at all".getBytes());
        assertFails(junk + ": header length", junk, good, good);
    }

    @Test
    void aFailedRunLeavesAnExistingOutputIntact() throws IOException {
        Path out = Files.writeString(dir.resolve("o.safetensors"), "previous results");
        CliRun r = CliRun.of("eval", "--checkpoint", "/nonexistent.safetensors", "--input", "x", "--output", out.toString());
        assertEquals(1, r.exitCode());
        assertEquals("previous results", Files.readString(out));
        try (var files = Files.list(dir)) {
            assertEquals(List.of(out), files.toList(), "no temporary files left");
        }
    }

    private void assertFails(String expectedStart, Object c, Path x, Path dy) {
        Path out = dir.resolve("out.safetensors");
        CliRun r = CliRun.of("eval", "--checkpoint", c.toString(), "--input", x.toString(), "--output", out.toString(),
                "--grad-output", dy.toString());
        assertEquals(1, r.exitCode(), r.err());
        String prefix = "tornado-lora eval: error: ";
        assertTrue(r.err().startsWith(prefix + expectedStart), "stderr was: " + r.err());
        assertEquals(1, r.err().lines().count(), "one line: " + r.err());
        assertFalse(Files.exists(out), "no output left behind");
    }

    /** Copies the fixture's checkpoint tensors into {@code to}, replacing (or, with null, dropping) one. */
    private static void rewrite(SafeTensors from, Path to, String name, Consumer<SafeTensorsWriter> replacement)
            throws IOException {
        SafeTensorsWriter w = new SafeTensorsWriter().metadata(from.metadata());
        for (String t : List.of("weight", "bias", "lora_a.weight", "lora_b.weight")) {
            if (t.equals(name)) {
                if (replacement != null) replacement.accept(w);
            } else {
                w.copy(from, t);
            }
        }
        w.write(to);
    }

    private static void copy(SafeTensors from, Path to, java.util.Map<String, String> metadata) throws IOException {
        SafeTensorsWriter w = new SafeTensorsWriter().metadata(metadata);
        for (String t : List.of("weight", "bias", "lora_a.weight", "lora_b.weight")) w.copy(from, t);
        w.write(to);
    }
}
