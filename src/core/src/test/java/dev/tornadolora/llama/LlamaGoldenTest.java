package dev.tornadolora.llama;

import dev.tornadolora.testing.Golden;
import dev.tornadolora.testing.TestDevices;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tornadolora.io.PeftAdapters;
import dev.tornadolora.io.SafeTensors;
import dev.tornadolora.tensor.Tensor;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Parity with transformers 5.18 + PEFT 0.21 (float64) on the fixtures of {@code scripts/llama_golden.py}: logits,
 * loss and every adapter gradient, for each case folder under {@code golden/llama} (committed, so this runs on a
 * fresh clone without Python).
 */
class LlamaGoldenTest {
    static final Path ROOT = goldenRoot();

    static Path goldenRoot() {
        for (String p : new String[] {"src/test/resources/golden/llama", "src/core/src/test/resources/golden/llama"}) {
            if (Files.isDirectory(Path.of(p))) return Path.of(p);
        }
        return Path.of("src/test/resources/golden/llama");
    }

    static List<Path> cases() throws IOException {
        return cases(ROOT, "scripts/llama_golden.py");
    }

    /** The case folders under {@code root}, sorted; the test is skipped (naming {@code script}) when there are none. */
    static List<Path> cases(Path root, String script) throws IOException {
        Assumptions.assumeTrue(Files.isDirectory(root), "no golden fixtures at " + root.toAbsolutePath()
                + " (generate them with " + script + ")");
        List<Path> out = new ArrayList<>();
        try (Stream<Path> s = Files.list(root)) {
            s.filter(p -> Files.isRegularFile(p.resolve("case.json"))).sorted().forEach(out::add);
        }
        Assumptions.assumeFalse(out.isEmpty(), "no case folders under " + root);
        return out;
    }

    @TestFactory
    Stream<DynamicTest> matchesTransformersAndPeft() throws IOException {
        return cases().stream().map(dir -> DynamicTest.dynamicTest(dir.getFileName().toString(), () -> check(dir, "jvm")));
    }

    static void check(Path dir, String device) throws IOException {
        JsonNode c = new ObjectMapper().readTree(Files.readString(dir.resolve("case.json")));
        PeftAdapters.Adapter adapter = PeftAdapters.read(dir.resolve("adapter"));
        LoraSettings settings = LoraSettings.of(adapter.config()).withQuantizeBase(c.path("quantize_base").asBoolean(false));
        assertEquals(c.path("use_dora").asBoolean(false), settings.dora(), "use_dora");
        assertEquals(c.get("scale").asDouble(), settings.scale(), 1e-6, "scale");
        SafeTensors in = SafeTensors.open(dir.resolve("input.safetensors"));
        TokenTensors.Tokens ids = TokenTensors.read(in, "input_ids");
        TokenTensors.Tokens labels = TokenTensors.read(in, "labels");
        SafeTensors expected = SafeTensors.open(dir.resolve("expected.safetensors"));
        try (LlamaForCausalLM m = LlamaForCausalLM.load(dir.resolve("model"), settings, TestDevices.named(device))) {
            m.loadAdapters(adapter.tensors());
            m.train(false);
            m.zeroGrad();
            assertEquals(c.get("counted_tokens").asLong(), LlamaForCausalLM.countedTokens(labels.values(), ids.batch(), ids.seq()));
            float[] logits = new float[ids.batch() * ids.seq() * m.config().vocabSize()];
            double loss = m.forwardBackward(ids.values(), labels.values(), ids.batch(), ids.seq(), 1.0, logits);
            double tolLogits = c.path("tolerance").path("logits").asDouble(1e-4);
            double tolGrad = c.path("tolerance").path("grad").asDouble(1e-4);
            double tolLoss = c.path("tolerance").path("loss").asDouble(1e-5);
            Golden.assertClose(expected.floats("logits").data(), logits, tolLogits, "logits");
            double expLoss = expected.floats("loss").data()[0];
            assertTrue(Math.abs(loss - expLoss) <= tolLoss * Math.abs(expLoss),
                    "loss " + loss + " vs " + expLoss + " (relative " + Math.abs(loss - expLoss) / Math.abs(expLoss) + ")");
            Map<String, Tensor> grads = m.adapterGradients();
            assertEquals(adapter.tensors().keySet(), grads.keySet(), "adapter keys");
            for (Map.Entry<String, Tensor> g : grads.entrySet()) {
                Golden.assertClose(expected.floats(g.getKey() + ".grad").data(), g.getValue().data(), tolGrad, g.getKey() + ".grad");
            }
            // The eval forward alone gives the same logits.
            Golden.assertClose(expected.floats("logits").data(), m.logits(ids.values(), ids.batch(), ids.seq()).data(),
                    tolLogits, "logits (eval forward)");
        }
    }
}
