package dev.tornadolora.train;

import dev.tornadolora.io.DType;
import dev.tornadolora.math.CrossEntropy;
import dev.tornadolora.io.SafeTensors;
import dev.tornadolora.tensor.Tensor;
import dev.tornadolora.testing.Golden;
import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** MSE and cross-entropy values and gradients against torch's F.mse_loss / F.cross_entropy (float64 autograd). */
class LossesTest {

    @Test
    void mseMatchesTorch() {
        SafeTensors f = Golden.open("train/loss_mse.safetensors");
        Losses.Result r = Losses.mse(f.f32("pred"), f.f32("target"));
        float expected = f.f32("loss").data()[0];
        assertEquals(expected, r.value(), 1e-6 * expected);
        Golden.assertClose(f.f32("grad").data(), r.grad().data(), 1e-6, "mse grad");
    }

    @Test
    void crossEntropyMatchesTorchIncludingIgnoreIndex() {
        SafeTensors f = Golden.open("train/loss_ce.safetensors");
        ByteBuffer b = ByteBuffer.wrap(f.bytes("targets", DType.I64)).order(ByteOrder.LITTLE_ENDIAN);
        int[] targets = new int[b.remaining() / 8];
        for (int i = 0; i < targets.length; i++) targets[i] = (int) b.getLong();
        assertTrue(java.util.Arrays.stream(targets).anyMatch(t -> t == CrossEntropy.IGNORE_INDEX), "fixture ignores a row");
        Losses.Result r = Losses.crossEntropy(f.f32("logits"), targets);
        float expected = f.f32("loss").data()[0];
        assertEquals(expected, r.value(), 1e-6 * expected);
        Golden.assertClose(f.f32("grad").data(), r.grad().data(), 1e-6, "cross-entropy grad");
    }

    @Test
    void badShapesAndTargetsAreNamed() {
        var e = assertThrows(IllegalArgumentException.class,
                () -> Losses.mse(Tensor.zeros(2, 3), Tensor.zeros(3, 2)));
        assertEquals("target: expected shape [2, 3] but got [3, 2]", e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> Losses.crossEntropy(Tensor.zeros(2, 4), new int[] {1}));
        assertEquals("targets: expected 2 class indices (one per row of logits [2, 4]) but got 1", e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> Losses.crossEntropy(Tensor.zeros(2, 4), new int[] {1, 4}));
        assertEquals("targets[1] = 4 is outside [0, 4)", e.getMessage());
    }

    @Test
    void allRowsIgnoredGivesNaNAsTorch() {
        assertTrue(Double.isNaN(Losses.crossEntropy(Tensor.zeros(1, 3), new int[] {CrossEntropy.IGNORE_INDEX}).value()));
    }
}
