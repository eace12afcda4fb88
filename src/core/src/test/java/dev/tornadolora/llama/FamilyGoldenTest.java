package dev.tornadolora.llama;

import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;

/**
 * Parity with transformers 5.18 + PEFT 0.21 (float64) for the families beside Llama, on the fixtures of
 * {@code scripts/family_golden.py} under {@code golden/families} (Qwen2 with q/k/v biases, Qwen3 with q/k norms and
 * an explicit head_dim; fp32 and quantize_base): logits, loss and every adapter gradient, as {@link LlamaGoldenTest}.
 */
class FamilyGoldenTest {
    static final Path ROOT = LlamaGoldenTest.goldenRoot().resolveSibling("families");

    @TestFactory
    Stream<DynamicTest> matchesTransformersAndPeft() throws IOException {
        List<Path> cases = LlamaGoldenTest.cases(ROOT, "scripts/family_golden.py");
        return cases.stream().map(dir -> DynamicTest.dynamicTest(dir.getFileName().toString(),
                () -> LlamaGoldenTest.check(dir, "jvm")));
    }
}
