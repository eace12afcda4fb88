package dev.tornadolora.train;

import dev.tornadolora.io.SafeTensors;
import dev.tornadolora.nn.Parameter;
import dev.tornadolora.testing.Golden;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** The cosine schedule (through LambdaLR's semantics) and clip_grad_norm_ against PyTorch. */
class ScheduleAndClipGoldenTest {

    @ParameterizedTest
    @ValueSource(strings = {"cosine_warmup", "cosine_no_warmup_1cycle", "cosine_all_warmup"})
    void learningRatesMatchLambdaLR(String name) {
        SafeTensors f = Golden.open("train/sched_" + name + ".safetensors");
        var m = f.metadata();
        Parameter p = new Parameter("p", new int[] {1}, new float[1], new float[1]);
        Sgd opt = new Sgd(List.of(p), Double.parseDouble(m.get("base_lr")));
        LrScheduler s = new LrScheduler(opt, new CosineWithWarmup(Long.parseLong(m.get("warmup")),
                Long.parseLong(m.get("total")), Double.parseDouble(m.get("cycles"))));
        float[] expected = f.f32("lr").data();
        for (int k = 0; k < expected.length; k++) {
            if (k > 0) {
                opt.step();
                s.step();
            }
            assertEquals(expected[k], opt.lr(), 1e-6 * Math.abs(expected[k]) + 1e-12, name + " lr at step " + k);
        }
    }

    @Test
    void warmupStartsAtZeroAndPeaksAtBaseRate() {
        CosineWithWarmup c = new CosineWithWarmup(10, 110);
        assertEquals(0.0, c.factor(0));
        assertEquals(0.5, c.factor(5));
        assertEquals(1.0, c.factor(10));
        assertEquals(0.5, c.factor(60), 1e-15);
        assertEquals(0.0, c.factor(110), 1e-15);
    }

    @ParameterizedTest
    @ValueSource(strings = {"active", "inactive"})
    void clipGradNormMatchesTorch(String name) {
        SafeTensors f = Golden.open("train/clip_" + name + ".safetensors");
        List<Parameter> ps = new ArrayList<>();
        for (int i = 0; f.contains("g" + i); i++) {
            var g = f.f32("g" + i);
            ps.add(new Parameter("p" + i, g.shape(), new float[g.numel()], g.data().clone()));
        }
        double norm = GradClip.clipGradNorm(ps, Double.parseDouble(f.metadata().get("max_norm")));
        assertEquals(f.f32("total_norm").data()[0], norm, 1e-6 * norm);
        for (int i = 0; i < ps.size(); i++) {
            Golden.assertClose(f.f32("g" + i + ".clipped").data(), ps.get(i).grad(), 1e-6, name + " g" + i);
        }
    }

    @Test
    void clipRejectsNonPositiveMaxNorm() {
        var e = assertThrows(IllegalArgumentException.class, () -> GradClip.clipGradNorm(List.of(), 0));
        assertEquals("max_norm must be positive, got 0.0", e.getMessage());
    }
}
