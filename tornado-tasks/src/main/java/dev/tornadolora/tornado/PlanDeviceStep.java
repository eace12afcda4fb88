package dev.tornadolora.tornado;

import dev.tornadolora.finetune.DeviceStep;
import dev.tornadolora.finetune.ExampleRows;
import dev.tornadolora.finetune.FinetuneConfig;
import dev.tornadolora.finetune.Finetuner;
import dev.tornadolora.finetune.TokenDataset;
import dev.tornadolora.llama.LlamaForCausalLM;
import dev.tornadolora.llama.LoraSettings;
import dev.tornadolora.nn.Parameter;
import dev.tornadolora.tensor.Tensor;
import dev.tornadolora.tornado.plan.LlamaDevicePlan;
import dev.tornadolora.train.AdamW;
import dev.tornadolora.train.Trainer;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalDouble;

/**
 * {@code finetune} on a TornadoVM device with the whole step on the device ({@link LlamaDevicePlan}): per
 * micro-batch the ids, targets and scale go in and the loss comes out; per step the norm comes out and AdamW's
 * constants go in. The plan is made at the first step (after a resume has put the adapters and AdamW's buffers on
 * the host) or at the first evaluation, which runs on the device too (the forward graphs and the loss alone, from the
 * device's adapters); {@link #toHost} writes adapters and moments back before a save and at the end.
 */
public final class PlanDeviceStep implements DeviceStep {

    /** Serves a finetuner whose model is on a TornadoVM device with settings the plan covers. */
    public static final class Provider implements DeviceStep.Provider {
        @Override
        public Optional<DeviceStep> open(Finetuner f, Trainer t) {
            LoraSettings lora = f.model().lora();
            // rows of several examples (ExampleRows: position ids restarting, attention kept apart) the layers' path
            boolean covered = lora.dropout() == 0f && !lora.output() && !(f.data() instanceof ExampleRows)
                    && LlamaDevicePlan.adaptsLayers(lora, f.model().config().numHiddenLayers())
                    && f.model().config().parts().equals(dev.tornadolora.llama.ModelFamily.Parts.LLAMA);
            if (!(f.model().backend() instanceof TornadoLoraBackend b) || !covered) {
                // the per-projection plan (LoRA dropout, an lm_head adapter, a family's biases or q/k norms)
                return Optional.empty();
            }
            return Optional.of(new PlanDeviceStep(f, t, b));
        }
    }

    private final Finetuner finetuner;
    private final Trainer trainer;
    private final TornadoLoraBackend backend;
    private LlamaDevicePlan plan;
    private boolean dirty;
    private long deviceSteps;
    private Map<String, Double> stats = Map.of();

    private PlanDeviceStep(Finetuner finetuner, Trainer trainer, TornadoLoraBackend backend) {
        this.finetuner = finetuner;
        this.trainer = trainer;
        this.backend = backend;
    }

    @Override
    public Trainer.StepRecord step(Trainer t) {
        if (t != trainer) throw new IllegalArgumentException("this device step belongs to another trainer");
        Finetuner f = finetuner;
        if (t.finished()) throw new IllegalStateException("all " + f.config().steps() + " steps are done");
        FinetuneConfig c = f.config();
        LlamaDevicePlan plan = plan();
        long step = t.stepsDone();
        long n = f.countedTokens(step);
        if (n == 0) {
            throw new IllegalArgumentException(f.data().source() + ": optimizer step " + step + " has no counted label"
                    + " tokens (every label is -100 after the shift)");
        }
        int[] rows = f.stepRows(step);
        int b = c.batch(), s = c.seqLen();
        double loss = 0;
        dirty = true;
        for (int lo = 0; lo < rows.length; lo += b) {
            int[] mb = java.util.Arrays.copyOfRange(rows, lo, Math.min(rows.length, lo + b));
            int[] labels = f.data().labels(mb);
            long nm = LlamaForCausalLM.countedTokens(labels, mb.length, s);
            if (nm > 0) {
                double share = (double) nm / n;
                loss += plan.forwardBackward(f.data().inputIds(mb), labels, share) * share;
            }
        }
        Trainer.StepRecord r = t.apply(loss, new Trainer.ExternalUpdate() {
            @Override
            public double gradNorm() {
                return plan.gradNorm();
            }

            @Override
            public void update(double lr, long stepCount) {
                deviceSteps++;
                plan.update(lr, deviceSteps);
            }
        });
        LlamaDevicePlan.StepProfile p = plan.takeProfile();
        Map<String, Double> st = new LinkedHashMap<>();
        st.put("copy_in_bytes", (double) p.copyInBytes());
        st.put("copy_out_bytes", (double) p.copyOutBytes());
        st.put("kernel_launches", (double) p.launches());
        p.kernelNanosByGraph().forEach((g, ns) -> st.put("kernel_ms_" + g, Math.round(ns / 1e3) / 1e3));
        stats = st;
        return r;
    }

    /** The plan, made at the first step or evaluation from the host's adapters and AdamW state (a resume's). */
    private LlamaDevicePlan plan() {
        if (plan == null) {
            FinetuneConfig c = finetuner.config();
            var opt = new LlamaDevicePlan.Optimizer(c.beta1(), c.beta2(), c.eps(), c.weightDecay(), c.maxGradNorm());
            plan = new LlamaDevicePlan(finetuner.model(), c.batch(), c.seqLen(), opt, backend.device(), true);
            List<float[]> m = new ArrayList<>(), v = new ArrayList<>();
            Map<String, Tensor> state = trainer.optimizer().state();
            for (Parameter p : trainer.optimizer().parameters()) {
                m.add(state.get(p.name() + ".exp_avg").data());
                v.add(state.get(p.name() + ".exp_avg_sq").data());
            }
            plan.setMoments(m, v);
            deviceSteps = trainer.optimizer().stepCount();
        }
        return plan;
    }

    @Override
    public OptionalDouble evalLoss(TokenDataset eval, int batch) {
        if (eval.seqLen() != finetuner.config().seqLen() || eval instanceof ExampleRows) {
            return OptionalDouble.empty();  // another row length, or rows of several examples: the host's path
        }
        LlamaDevicePlan p = plan();
        // in batches of the plan's rows (the last one padded on the device), whatever the caller's batch
        return OptionalDouble.of(Finetuner.evalLoss(eval, p.batch(), (ids, pos, labels, rows, seq) -> p.loss(ids, labels)));
    }

    @Override
    public void toHost() {
        if (plan == null || !dirty) return;
        AdamW opt = (AdamW) trainer.optimizer();  // a finetuner's trainer steps AdamW
        List<Parameter> ps = opt.parameters();
        List<float[]> m = new ArrayList<>(), v = new ArrayList<>();
        for (Parameter p : ps) {
            m.add(new float[p.numel()]);
            v.add(new float[p.numel()]);
        }
        plan.stateToHost(m, v);
        Map<String, Tensor> state = new LinkedHashMap<>();
        for (int i = 0; i < ps.size(); i++) {
            state.put(ps.get(i).name() + ".exp_avg", new Tensor(ps.get(i).shape(), m.get(i)));
            state.put(ps.get(i).name() + ".exp_avg_sq", new Tensor(ps.get(i).shape(), v.get(i)));
        }
        opt.loadState(state, deviceSteps);
        dirty = false;
    }

    @Override
    public Map<String, Double> lastStepStats() {
        return stats;
    }

    @Override
    public long deviceBytes() {
        return plan == null ? -1 : plan.deviceBytes();
    }

    @Override
    public String describe() {
        return "whole step on " + backend.name() + " (one TornadoVM plan)";
    }

    @Override
    public void close() {
        if (plan != null) {
            LlamaDevicePlan p = plan;
            plan = null;
            p.close();
        }
    }
}
