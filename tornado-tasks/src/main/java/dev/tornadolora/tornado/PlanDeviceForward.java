package dev.tornadolora.tornado;

import dev.tornadolora.llama.DeviceForward;
import dev.tornadolora.llama.LlamaForCausalLM;
import dev.tornadolora.llama.LoraSettings;
import dev.tornadolora.llama.ModelFamily;
import dev.tornadolora.nn.Parameter;
import dev.tornadolora.tornado.plan.LlamaDevicePlan;
import dev.tornadolora.train.AdamW;

import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * {@code forward --device tornado:B:D} on the whole-model device plan ({@link LlamaDevicePlan} with its forward
 * outputs): the logits by the forward graphs, the loss and the adapters' gradients by the training step's forward
 * and backward (no optimizer step). Served where the plan covers the model: LoRA (not DoRA, one rank) on the layers'
 * projections, none on lm_head, Llama's parts. Elsewhere (no adapter, DoRA, an lm_head adapter, a family's biases or
 * q/k norms) the layers' own path runs, each projection on the device by its per-projection plan.
 */
public final class PlanDeviceForward implements DeviceForward {

    /** Serves a model on a TornadoVM device with settings the plan covers. */
    public static final class Provider implements DeviceForward.Provider {
        @Override
        public Optional<DeviceForward> open(LlamaForCausalLM model, int batch, int seq) {
            LoraSettings lora = model.lora();
            boolean covered = model.backend() instanceof TornadoLoraBackend && !lora.output() && !lora.dora()
                    && lora.dropout() == 0f
                    && lora.rankPattern().isEmpty() && lora.alphaPattern().isEmpty()
                    && LlamaDevicePlan.adaptsLayers(lora, model.config().numHiddenLayers())
                    && model.config().parts().equals(ModelFamily.Parts.LLAMA);
            if (!covered) return Optional.empty();
            return Optional.of(new PlanDeviceForward(model, batch, seq));
        }
    }

    private final LlamaForCausalLM model;
    private final LlamaDevicePlan plan;

    private PlanDeviceForward(LlamaForCausalLM model, int batch, int seq) {
        this.model = model;
        // no optimizer step runs: AdamW's defaults only fill the plan's constants
        var opt = new LlamaDevicePlan.Optimizer(AdamW.DEFAULT_BETA1, AdamW.DEFAULT_BETA2, AdamW.DEFAULT_EPS, 0, 0);
        TornadoLoraBackend backend = (TornadoLoraBackend) model.backend();
        this.plan = new LlamaDevicePlan(model, batch, seq, opt, backend.device(), false, true);
    }

    @Override
    public float[] logits(int[] inputIds) {
        return plan.logits(inputIds);
    }

    @Override
    public double forwardBackward(int[] inputIds, int[] labels, float[] logits) {
        float[] z = plan.logits(inputIds);
        System.arraycopy(z, 0, logits, 0, z.length);
        double loss = plan.forwardBackward(inputIds, labels, 1.0);
        List<float[]> grads = new ArrayList<>();
        for (Parameter p : model.trainableParameters()) grads.add(p.grad());
        plan.gradientsToHost(grads);
        return loss;
    }

    @Override
    public String describe() {
        return "whole model on " + model.backend().name() + " (one TornadoVM plan)";
    }

    @Override
    public void close() {
        plan.close();
    }
}
