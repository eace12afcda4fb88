package dev.tornadolora.cli;

import dev.tornadolora.io.DType;
import dev.tornadolora.io.SafeTensors;
import dev.tornadolora.io.SafeTensorsWriter;
import dev.tornadolora.llama.TokenTensors;
import dev.tornadolora.testing.Golden;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The {@code forward} contract on a golden case: outputs as transformers + PEFT give them, bad input in one line. */
class ForwardCommandTest {
    static Path golden;

    @BeforeAll
    static void findFixtures() {
        for (String p : new String[] {"src/test/resources/golden/llama", "src/core/src/test/resources/golden/llama",
                "../core/src/test/resources/golden/llama"}) {
            if (Files.isDirectory(Path.of(p))) golden = Path.of(p);
        }
        Assumptions.assumeTrue(golden != null, "no Llama golden fixtures (scripts/llama_golden.py writes them)");
    }

    void checkCase(String name, Path tmp, boolean quantize) {
        Path c = golden.resolve(name), out = tmp.resolve(name + ".safetensors");
        String[] args = quantize
                ? new String[] {"forward", "--model", c.resolve("model").toString(), "--input", c.resolve("input.safetensors").toString(),
                        "--output", out.toString(), "--adapter", c.resolve("adapter").toString(), "--quantize-base"}
                : new String[] {"forward", "--model", c.resolve("model").toString(), "--input", c.resolve("input.safetensors").toString(),
                        "--output", out.toString(), "--adapter", c.resolve("adapter").toString()};
        CliRun r = CliRun.of(args);
        assertEquals(0, r.exitCode(), r.err());
        SafeTensors o = SafeTensors.open(out), e = SafeTensors.open(c.resolve("expected.safetensors"));
        assertTrue(Golden.relativeErrorAgainstNonZero(e.floats("logits").data(), o.f32("logits").data()) <= 1e-4);
        assertEquals(0, o.entry("loss").shape().length, "loss has shape []");
        assertEquals(e.floats("loss").data()[0], o.f32("loss").data()[0], 1e-5 * Math.abs(e.floats("loss").data()[0]));
        int grads = 0;
        for (String k : e.names()) {
            if (k.endsWith(".grad")) {
                assertTrue(Golden.relativeErrorAgainstNonZero(e.floats(k).data(), o.f32(k).data()) <= 1e-4, k);
                grads++;
            }
        }
        assertEquals(grads, o.names().size() - 2, "exactly the adapter gradients besides logits and loss");
        assertTrue(grads > 0);
    }

    @Test
    void matchesTheGoldenCases(@TempDir Path tmp) {
        checkCase("gqa4_llama3_mlp_sharded", tmp, false);
        checkCase("qlora_mha", tmp, true);
    }

    /** forward --adapter with use_dora: logits, loss and gradients (the magnitude's too) as transformers + PEFT. */
    @Test
    void matchesTheDoraAndTargetModulesCases(@TempDir Path tmp) {
        checkCase("dora_q_v_down", tmp, false);
        checkCase("dora_qlora_all_linear", tmp, true);
        checkCase("regex_k_up_lm_head", tmp, false);
        SafeTensors e = SafeTensors.open(golden.resolve("dora_q_v_down/expected.safetensors"));
        assertTrue(e.names().contains("base_model.model.model.layers.0.mlp.down_proj.lora_magnitude_vector.grad"));
    }

    @Test
    void logitsOnlyWithoutLabelsOrAdapter(@TempDir Path tmp) throws IOException {
        Path c = golden.resolve("gqa2_bf16_attn");
        SafeTensors in = SafeTensors.open(c.resolve("input.safetensors"));
        Path t = tmp.resolve("t.safetensors");
        new SafeTensorsWriter().raw("input_ids", DType.I64, in.entry("input_ids").shape(), in.bytes("input_ids", DType.I64)).write(t);
        Path out = tmp.resolve("o.safetensors");
        CliRun r = CliRun.of("forward", "--model", c.resolve("model").toString(), "--input", t.toString(), "--output", out.toString());
        assertEquals(0, r.exitCode(), r.err());
        assertEquals(java.util.Set.of("logits"), SafeTensors.open(out).names());
    }

    private static CliRun bad(Path model, Path input, Path out, Path adapter) {
        return adapter == null
                ? CliRun.of("forward", "--model", model.toString(), "--input", input.toString(), "--output", out.toString())
                : CliRun.of("forward", "--model", model.toString(), "--input", input.toString(), "--output", out.toString(),
                        "--adapter", adapter.toString());
    }

    private static void assertOneLineError(CliRun r, String fragment, Path out) {
        assertEquals(1, r.exitCode(), r.err());
        assertEquals(1, r.err().strip().lines().count(), r.err());
        assertTrue(r.err().contains(fragment), r.err());
        assertFalse(Files.exists(out), "no output on failure");
    }

    @Test
    void badInputExitsOneWithOneLine(@TempDir Path tmp) throws IOException {
        Path c = golden.resolve("gqa2_bf16_attn"), model = c.resolve("model"), out = tmp.resolve("o.safetensors");
        Path ids = tmp.resolve("ids.safetensors");
        new SafeTensorsWriter().raw("input_ids", DType.I64, new int[] {1, 3}, TokenTensors.i64(new int[] {1, 2, 100000})).write(ids);
        assertOneLineError(bad(model, ids, out, null), "input_ids[0, 2] = 100000 is out of range", out);

        Path mismatch = tmp.resolve("mismatch.safetensors");
        new SafeTensorsWriter().raw("input_ids", DType.I64, new int[] {1, 3}, TokenTensors.i64(new int[] {1, 2, 3}))
                .raw("labels", DType.I64, new int[] {1, 2}, TokenTensors.i64(new int[] {1, 2})).write(mismatch);
        assertOneLineError(bad(model, mismatch, out, null), "do not match input_ids", out);

        Path gpt2 = tmp.resolve("gpt2");
        copy(model, gpt2);
        Files.writeString(gpt2.resolve("config.json"), Files.readString(gpt2.resolve("config.json"))
                .replace("\"model_type\": \"llama\"", "\"model_type\": \"gpt2\""));
        assertOneLineError(bad(gpt2, c.resolve("input.safetensors"), out, null), "unknown architecture", out);

        Path other = golden.resolve("odd_heads_rslora_lm_head").resolve("adapter");
        assertOneLineError(bad(model, c.resolve("input.safetensors"), out, other), "adapter does not fit the model", out);
    }

    @Test
    void refusesToOverwriteItsInput(@TempDir Path tmp) throws IOException {
        Path c = golden.resolve("gqa2_bf16_attn");
        Path t = tmp.resolve("t.safetensors");
        Files.copy(c.resolve("input.safetensors"), t);
        byte[] before = Files.readAllBytes(t);
        CliRun r = CliRun.of("forward", "--model", c.resolve("model").toString(), "--input", t.toString(), "--output", t.toString());
        assertEquals(1, r.exitCode());
        assertTrue(r.err().contains("writing it would destroy an input"), r.err());
        assertTrue(java.util.Arrays.equals(before, Files.readAllBytes(t)));
    }

    static void copy(Path from, Path to) throws IOException {
        Files.createDirectories(to);
        try (Stream<Path> s = Files.list(from)) {
            for (Path p : s.sorted(Comparator.naturalOrder()).toList()) Files.copy(p, to.resolve(p.getFileName()));
        }
    }
}
