package dev.tornadolora.llama;

import dev.tornadolora.nn.Parameter;
import dev.tornadolora.tensor.Tensor;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/** Skeleton: the API of PLAN.md; bodies follow. */
public final class LlamaForCausalLM implements AutoCloseable {

    private LlamaForCausalLM() {}

    public static LlamaForCausalLM load(Path hfDir, LoraSettings lora, String device) {
        throw new UnsupportedOperationException("not yet implemented");
    }

    public static LlamaForCausalLM fromWeights(LlamaConfig c, Map<String, Tensor> hfWeights, LoraSettings lora,
                                               String device) {
        throw new UnsupportedOperationException("not yet implemented");
    }

    public LlamaConfig config() { throw new UnsupportedOperationException("not yet implemented"); }

    public LoraSettings lora() { throw new UnsupportedOperationException("not yet implemented"); }

    public Tensor logits(int[] inputIds, int batch, int seq) {
        throw new UnsupportedOperationException("not yet implemented");
    }

    public double forwardBackward(int[] inputIds, int[] labels, int batch, int seq, double lossScale) {
        throw new UnsupportedOperationException("not yet implemented");
    }

    public double loss(int[] inputIds, int[] labels, int batch, int seq) {
        throw new UnsupportedOperationException("not yet implemented");
    }

    public static long countedTokens(int[] labels, int batch, int seq) {
        throw new UnsupportedOperationException("not yet implemented");
    }

    public List<Parameter> trainableParameters() { throw new UnsupportedOperationException("not yet implemented"); }

    public void zeroGrad() { throw new UnsupportedOperationException("not yet implemented"); }

    public LlamaForCausalLM train(boolean mode) { throw new UnsupportedOperationException("not yet implemented"); }

    public Map<String, Tensor> adapterStateDict() { throw new UnsupportedOperationException("not yet implemented"); }

    public void loadAdapters(Map<String, Tensor> peftKeys) { throw new UnsupportedOperationException("not yet implemented"); }

    public Map<String, Tensor> mergedWeights() { throw new UnsupportedOperationException("not yet implemented"); }

    @Override
    public void close() {}
}
