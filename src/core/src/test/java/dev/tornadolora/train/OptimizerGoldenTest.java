package dev.tornadolora.train;

import dev.tornadolora.io.SafeTensors;
import dev.tornadolora.nn.Parameter;
import dev.tornadolora.tensor.Tensor;
import dev.tornadolora.testing.Golden;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** AdamW and SGD against torch.optim on the fixtures of scripts/golden_train.py (fixed gradients per step). */
class OptimizerGoldenTest {

    static List<Parameter> params(SafeTensors f, AtomicInteger updates) {
        List<Parameter> ps = new ArrayList<>();
        for (int i = 0; f.contains("p" + i + ".init"); i++) {
            Tensor init = f.f32("p" + i + ".init");
            ps.add(new Parameter("p" + i, init.shape(), init.data().clone(), new float[init.numel()]));
        }
        return ps;
    }

    static Optimizer optimizer(SafeTensors f, List<Parameter> ps) {
        Map<String, String> m = f.metadata();
        double lr = Double.parseDouble(m.get("lr")), wd = Double.parseDouble(m.get("weight_decay"));
        return m.get("optimizer").equals("adamw")
                ? new AdamW(ps, lr, Double.parseDouble(m.get("beta1")), Double.parseDouble(m.get("beta2")),
                        Double.parseDouble(m.get("eps")), wd)
                : new Sgd(ps, lr, Double.parseDouble(m.get("momentum")), Double.parseDouble(m.get("dampening")), wd,
                        Boolean.parseBoolean(m.get("nesterov")));
    }

    static void setGrads(SafeTensors f, List<Parameter> ps, int step) {
        for (int i = 0; i < ps.size(); i++) {
            float[] g = f.f32("p" + i + ".grad." + step).data();
            System.arraycopy(g, 0, ps.get(i).grad(), 0, g.length);
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"adamw_default", "adamw_custom", "adamw_no_decay", "sgd_plain", "sgd_momentum",
            "sgd_dampening_decay", "sgd_nesterov"})
    void matchesTorchStepByStep(String name) {
        SafeTensors f = Golden.open("train/optim_" + name + ".safetensors");
        AtomicInteger updates = new AtomicInteger();
        List<Parameter> ps = params(f, updates);
        Optimizer opt = optimizer(f, ps);
        int steps = Integer.parseInt(f.metadata().get("steps"));
        for (int k = 1; k <= steps; k++) {
            setGrads(f, ps, k);
            opt.step();
            for (int i = 0; i < ps.size(); i++) {
                Golden.assertClose(f.f32("p" + i + ".step." + k).data(), ps.get(i).data(), 1e-6,
                        name + " p" + i + " after step " + k);
            }
        }
        assertEquals(steps, opt.stepCount());
    }

    @Test
    void adamWDefaultsAreTorchs() {
        Parameter p = new Parameter("p", new int[] {1}, new float[] {1f}, new float[] {0f});
        AdamW a = new AdamW(List.of(p));
        assertEquals(1e-3, a.lr());
        p.grad()[0] = 0.5f;
        a.step();
        // step 1 with defaults: θ·(1 − 1e-3·0.01) − 1e-3 · m̂/(√v̂ + 1e-8), m̂ = g, √v̂ = |g|
        assertEquals(1.0 * (1 - 1e-5) - 1e-3 * 0.5 / (0.5 + 1e-8), p.data()[0], 1e-7);
    }

    @Test
    void zeroGradClearsEveryGradient() {
        Parameter p = new Parameter("p", new int[] {2}, new float[2], new float[] {1f, 2f});
        Parameter q = new Parameter("q", new int[] {1}, new float[1], new float[] {3f});
        new Sgd(List.of(p, q), 0.1).zeroGrad();
        assertArrayEquals(new float[2], p.grad());
        assertArrayEquals(new float[1], q.grad());
    }

    /** Saving the state after some steps and restoring it into a fresh optimizer continues bit for bit. */
    @ParameterizedTest
    @ValueSource(strings = {"adamw_custom", "sgd_nesterov"})
    void stateRoundTripResumesExactly(String name) {
        SafeTensors f = Golden.open("train/optim_" + name + ".safetensors");
        List<Parameter> ps = params(f, new AtomicInteger());
        Optimizer opt = optimizer(f, ps);
        for (int k = 1; k <= 3; k++) {
            setGrads(f, ps, k);
            opt.step();
        }
        List<Parameter> copy = new ArrayList<>();
        for (Parameter p : ps) copy.add(new Parameter(p.name(), p.shape(), p.data().clone(), new float[p.numel()]));
        Optimizer resumed = optimizer(f, copy);
        resumed.loadState(opt.state(), opt.stepCount());
        for (int k = 4; k <= 6; k++) {
            setGrads(f, ps, k);
            setGrads(f, copy, k);
            opt.step();
            resumed.step();
        }
        for (int i = 0; i < ps.size(); i++) assertArrayEquals(ps.get(i).data(), copy.get(i).data());
    }

    @Test
    void loadStateNamesMissingAndUnexpectedBuffers() {
        Parameter p = new Parameter("fc1.lora_a.weight", new int[] {2}, new float[2], new float[2]);
        AdamW a = new AdamW(List.of(p));
        Map<String, Tensor> state = new java.util.LinkedHashMap<>(a.state());
        state.remove("fc1.lora_a.weight.exp_avg_sq");
        var e = assertThrows(IllegalArgumentException.class, () -> a.loadState(state, 1));
        assertEquals("optimizer state: missing buffer 'fc1.lora_a.weight.exp_avg_sq'", e.getMessage());
        Map<String, Tensor> extra = new java.util.LinkedHashMap<>(a.state());
        extra.put("fc2.lora_a.weight.exp_avg", Tensor.zeros(2));
        e = assertThrows(IllegalArgumentException.class, () -> a.loadState(extra, 1));
        assertEquals("optimizer state: unexpected buffers [fc2.lora_a.weight.exp_avg]", e.getMessage());
        Map<String, Tensor> wrong = new java.util.LinkedHashMap<>(a.state());
        wrong.put("fc1.lora_a.weight.exp_avg", Tensor.zeros(3));
        e = assertThrows(IllegalArgumentException.class, () -> a.loadState(wrong, 1));
        assertEquals("optimizer state 'fc1.lora_a.weight.exp_avg': expected shape [2] but got [3]", e.getMessage());
    }

    @Test
    void invalidHyperParametersAreRejectedAsTorchDoes() {
        List<Parameter> ps = List.of(new Parameter("p", new int[] {1}, new float[1], new float[1]));
        assertEquals("Invalid learning rate: -0.1",
                assertThrows(IllegalArgumentException.class, () -> new AdamW(ps, -0.1)).getMessage());
        assertEquals("Invalid beta parameter at index 1: 1.0", assertThrows(IllegalArgumentException.class,
                () -> new AdamW(ps, 1e-3, 0.9, 1.0, 1e-8, 0)).getMessage());
        assertEquals("Nesterov momentum requires a momentum and zero dampening", assertThrows(
                IllegalArgumentException.class, () -> new Sgd(ps, 0.1, 0, 0, 0, true)).getMessage());
        assertEquals("Nesterov momentum requires a momentum and zero dampening", assertThrows(
                IllegalArgumentException.class, () -> new Sgd(ps, 0.1, 0.9, 0.1, 0, true)).getMessage());
        assertTrue(assertThrows(IllegalArgumentException.class, () -> new Sgd(List.of(), 0.1))
                .getMessage().contains("empty parameter list"));
    }
}
