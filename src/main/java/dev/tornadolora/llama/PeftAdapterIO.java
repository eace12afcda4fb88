package dev.tornadolora.llama;

import dev.tornadolora.tensor.Tensor;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Map;

/** Skeleton: PEFT adapter folders in and out; bodies follow. */
public final class PeftAdapterIO {

    /** A PEFT adapter as read: its settings and its tensors under PEFT keys. */
    public record Adapter(LoraSettings settings, Map<String, Tensor> tensors) {}

    private PeftAdapterIO() {}

    public static void write(Path dir, LlamaForCausalLM m, String baseModelNameOrPath) throws IOException {
        throw new UnsupportedOperationException("not yet implemented");
    }

    public static Adapter read(Path dir) {
        throw new UnsupportedOperationException("not yet implemented");
    }
}
