package dev.tornadolora.train;

import dev.tornadolora.io.SafeTensors;
import dev.tornadolora.nn.Parameter;
import dev.tornadolora.nn.Sequential;
import dev.tornadolora.tensor.Tensor;
import dev.tornadolora.testing.Golden;
import dev.tornadolora.testing.SeqFixture;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A whole training loop against PyTorch: Sequential(fc1, SiLU, fc2), MSE, backward, clip_grad_norm_(0.5),
 * AdamW(lr 0.02), cosine schedule with warm-up; loss, lr and norm of every step and the final adapters.
 */
class TrainLoopGoldenTest {
    @TempDir
    Path dir;

    /** The one step implementation on the fixture: every step the same batch x → t, as the torch loop. */
    private static Trainer trainer(Sequential model, SafeTensors f, Tensor target) {
        var m = f.metadata();
        AdamW opt = new AdamW(model.parameters(), Double.parseDouble(m.get("lr")));
        Tensor x = f.f32("x");
        RegressionTask task = new RegressionTask(model, Losses::mse, step -> new RegressionTask.Batch(x, target), x.dim(0));
        long total = Long.parseLong(m.get("total"));
        return new Trainer(task, opt, new CosineWithWarmup(Long.parseLong(m.get("warmup")), total),
                Double.parseDouble(m.get("max_norm")), total);
    }

    private static Trainer trainer(Sequential model, SafeTensors f) {
        return trainer(model, f, f.f32("t"));
    }

    @Test
    void everyStepMatchesTorch() {
        SafeTensors f = Golden.open("train/trainloop.safetensors");
        Sequential model = SeqFixture.build(f, "silu", true);
        Trainer t = trainer(model, f);
        int steps = Integer.parseInt(f.metadata().get("steps"));
        for (int k = 1; k <= steps; k++) {
            Trainer.StepRecord r = t.step();
            float loss = f.f32("loss." + k).data()[0], lr = f.f32("lr." + k).data()[0];
            float norm = f.f32("grad_norm." + k).data()[0];
            assertEquals(loss, r.loss(), 1e-5 * loss, "loss at step " + k);
            assertEquals(lr, r.lr(), 1e-6 * lr + 1e-12, "lr at step " + k);
            assertEquals(norm, r.gradNorm(), 1e-5 * norm, "grad norm at step " + k);
            assertEquals(10, r.tokens());
        }
        for (Parameter p : model.parameters()) {
            Golden.assertClose(f.f32("final." + p.name()).data(), p.data(), 1e-5, "final " + p.name());
        }
    }

    /** Stopping after 3 steps, saving the training state and resuming gives the uninterrupted run's adapters. */
    @Test
    void resumeFromTrainingStateMatchesUninterruptedRun() throws Exception {
        SafeTensors f = Golden.open("train/trainloop.safetensors");
        Sequential straight = SeqFixture.build(f, "silu", true);
        Trainer a = trainer(straight, f);
        assertEquals(8, a.steps());
        while (!a.finished()) a.step();

        Sequential first = SeqFixture.build(f, "silu", true);
        Trainer b = trainer(first, f);
        for (int k = 1; k <= 3; k++) b.step();
        Path state = dir.resolve("training_state.safetensors");
        b.save(state, java.util.Map.of());

        Sequential second = SeqFixture.build(f, "silu", true);  // fresh: the resume point brings the adapters back
        Trainer c = trainer(second, f);
        c.resume(state);
        assertEquals(3, c.stepsDone());
        while (!c.finished()) c.step();
        for (int i = 0; i < straight.parameters().size(); i++) {
            assertArrayEquals(straight.parameters().get(i).data(), second.parameters().get(i).data());
        }
    }

    @Test
    void nonFiniteLossStopsBeforeTheUpdate() {
        SafeTensors f = Golden.open("train/trainloop.safetensors");
        Sequential model = SeqFixture.build(f, "silu", true);
        float[] before = model.parameters().get(0).data().clone();
        float[] target = f.f32("t").data().clone();
        target[3] = Float.NaN;
        Trainer t = trainer(model, f, Tensor.of(target, 10, 6));
        var e = assertThrows(IllegalStateException.class, t::step);
        assertTrue(e.getMessage().startsWith("training stopped at step 1: the loss is NaN"), e.getMessage());
        assertArrayEquals(before, model.parameters().get(0).data());
    }
}
