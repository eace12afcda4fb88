package dev.tornadolora.llama.ops;

import dev.tornadolora.math.Exp;
import jdk.incubator.vector.FloatVector;
import org.junit.jupiter.api.Test;

import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The one exp ({@link Exp}): within 2 ulp of the correctly rounded value over the range softmax and SiLU use, and the vector
 * lanes give the scalar twin's bits (both are built from exactly specified operations, so every JIT tier agrees).
 */
class ExpTest {
    @Test
    void accurateAndTheSameInVectorLanesAndScalarTails() {
        SplittableRandom rng = new SplittableRandom(3);
        float[] x = new float[VecSimd.L * 20000];
        for (int i = 0; i < x.length; i++) x[i] = (float) (rng.nextDouble() * 180 - 90);
        x[0] = 0f;
        x[1] = -87.3f;
        x[2] = 88.3f;
        x[3] = 1e-8f;
        double worstUlps = 0;
        for (int i = 0; i < x.length; i += VecSimd.L) {
            float[] lanes = new float[VecSimd.L];
            VecSimd.exp(FloatVector.fromArray(VecSimd.F, x, i)).intoArray(lanes, 0);
            for (int l = 0; l < VecSimd.L; l++) {
                float xi = x[i + l], scalar = Exp.exp(xi);
                assertEquals(Float.floatToRawIntBits(scalar), Float.floatToRawIntBits(lanes[l]), "x = " + xi);
                if (xi >= -87.3f && xi <= 88.3f) {
                    float exact = (float) StrictMath.exp(xi);
                    worstUlps = Math.max(worstUlps, Math.abs(scalar - exact) / Math.ulp(exact));
                } else {
                    assertTrue(xi < 0 ? scalar < 2e-38f : scalar > 2e38f, "clamped: x = " + xi + " → " + scalar);
                }
            }
        }
        assertEquals(1f, Exp.exp(0f));
        assertTrue(worstUlps <= 2, "worst error " + worstUlps + " ulp");
    }
}
