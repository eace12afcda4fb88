package dev.tornadolora.tornado.kernels;

import uk.ac.manchester.tornado.api.annotations.Parallel;
import uk.ac.manchester.tornado.api.types.arrays.FloatArray;

/**
 * Rotary position embedding on the device, in Hugging Face's {@code rotate_half} convention; the math and its JVM
 * twin are {@code dev.tornadolora.llama.ops.Rope}. The cos/sin tables [seq, d/2] are frozen: the host computes them
 * once ({@code Rope.tables}, llama3 scaling included) and they stay on the device.
 * <pre>
 *   y[i]       = x[i]·c − x[i + d/2]·s        y[i + d/2] = x[i + d/2]·c + x[i]·s
 *   backward   the same rotation with −s (sign = −1)
 * </pre>
 * x is [batch·seq, heads·d], rotated in place; token b·seq + s sits at position s. Dimension 0 runs over positions,
 * 1 over sequences, so no index is divided (TornadoVM's OpenCL code divides signed ints wrongly by powers of two).
 * Names stay apart from OpenCL's types and built-ins ({@code halfDim}, not {@code half}; {@code rotateHalves}, not
 * {@code rotate}): TornadoVM emits them as they are.
 */
public final class RopeKernels {
    private RopeKernels() {}

    public static void rotateHalves(FloatArray x, FloatArray cosTable, FloatArray sinTable, int seq, int batch, int heads,
                              int headDim, int halfDim, float sign) {
        for (@Parallel int s = 0; s < seq; s++) {
            for (@Parallel int b = 0; b < batch; b++) {
                int width = heads * headDim;
                int row = (b * seq + s) * width;
                for (int h = 0; h < heads; h++) {
                    int o = row + h * headDim;
                    for (int i = 0; i < halfDim; i++) {
                        float c = cosTable.get(s * halfDim + i);
                        float sn = sign * sinTable.get(s * halfDim + i);
                        float x1 = x.get(o + i);
                        float x2 = x.get(o + i + halfDim);
                        x.set(o + i, x1 * c - x2 * sn);
                        x.set(o + i + halfDim, x2 * c + x1 * sn);
                    }
                }
            }
        }
    }
}
