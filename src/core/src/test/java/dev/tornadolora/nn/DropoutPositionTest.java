package dev.tornadolora.nn;

import dev.tornadolora.tensor.Tensor;
import org.junit.jupiter.api.Test;

import java.time.Duration;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;

/**
 * A layer put at dropout position k by {@link LoRALinear#resumeDropout} draws what a layer that made k draws draws
 * next, across the generator's chunk boundaries, and any position is reached at once (issue 12: a state claiming
 * 2^63 draws made a resume spin forever).
 */
class DropoutPositionTest {
    private static LoRALinear layer() {
        return LoRALinear.builder(1024, 4).rank(2).alpha(2).dropout(0.5f).seed(7).build().train(true);
    }

    private static float[] nextMask(LoRALinear l, int tokens) {
        l.forward(Tensor.of(new float[tokens * 1024], tokens, 1024));
        return l.lastDropoutMultiplier();
    }

    @Test
    void resumedPositionDrawsWhatTheUninterruptedLayerDraws() {
        LoRALinear straight = layer();
        nextMask(straight, 1100);  // 1,126,400 draws: past the first chunk of 2^20
        assertEquals(1100 * 1024, straight.dropoutDraws());
        float[] expected = nextMask(straight, 1100);  // crosses no boundary but starts inside chunk 1
        LoRALinear resumed = layer();
        resumed.resumeDropout(1100 * 1024);
        assertArrayEquals(expected, nextMask(resumed, 1100));

        LoRALinear atBoundary = layer();
        atBoundary.resumeDropout(LoRALinear.DROPOUT_CHUNK - 100);  // the next call crosses into chunk 1
        float[] across = nextMask(atBoundary, 1);
        LoRALinear stepped = layer();
        nextMask(stepped, 1023);  // 1023 x 1024 = 2^20 - 1024 draws
        stepped.resumeDropout(stepped.dropoutDraws() + 924);
        assertArrayEquals(across, nextMask(stepped, 1));
    }

    @Test
    void anyPositionIsReachedAtOnce() {
        LoRALinear l = layer();
        assertTimeoutPreemptively(Duration.ofSeconds(10), () -> l.resumeDropout(Long.MAX_VALUE - 5));
        assertEquals(Long.MAX_VALUE - 5, l.dropoutDraws());
    }
}
