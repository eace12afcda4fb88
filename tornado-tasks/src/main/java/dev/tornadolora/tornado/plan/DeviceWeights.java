package dev.tornadolora.tornado.plan;

import dev.tornadolora.kernels.Adapters;
import dev.tornadolora.kernels.LayerSpec;
import dev.tornadolora.math.Nf4;
import dev.tornadolora.tensor.DenseWeight;
import dev.tornadolora.tensor.Nf4Tensor;
import dev.tornadolora.tornado.kernels.Matmul;
import uk.ac.manchester.tornado.api.types.arrays.ByteArray;
import uk.ac.manchester.tornado.api.types.arrays.FloatArray;
import uk.ac.manchester.tornado.api.types.collections.VectorFloat16;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * A bound layer's frozen parameters as TornadoVM arrays, made once at bind: the base (fp32 W repacked for the
 * schedule, or NF4 codes + per-block scales) and the bias. They move to the device with the first run of a plan
 * and stay there. The adapters have arrays here too, filled from the call's {@link Adapters} before every run.
 * Unused roles hold one-element placeholders, so every kernel keeps one signature whatever the base (kernel
 * arguments are never null).
 */
final class DeviceWeights {
    final int in;
    final int out;
    final int rank;
    /** At least 1: a layer bound without adapters (rank 0) still passes adapter arrays to its kernels. */
    final int kernelRank;
    final float scale;
    final boolean nf4;
    final int log2BlockSize;
    final boolean hasBias;
    final FloatArray w;
    final ByteArray codes;
    final FloatArray scales;
    final FloatArray codebook;
    final FloatArray bias;
    /** The adapters as the forward graph reads them, and as the backward graph does (each graph its own copy). */
    final FloatArray a;
    final FloatArray b;
    final FloatArray backwardA;
    final FloatArray backwardB;
    /**
     * W repacked for {@code Matmul.panels} as B = Wᵀ (CPU schedule, fp32 base): the base's one device copy; the
     * backward reads it as W ({@code Matmul.panelsTransposed}).
     */
    final VectorFloat16 forwardPanels;
    /**
     * The adapters and bias for the CPU schedule's fused forward ({@code Matmul.panels}): A as the B operand of
     * h = x·Aᵀ, s·B as the second operand of y += h·(s·B)ᵀ, and the bias as one panel row. Placeholders elsewhere.
     */
    final VectorFloat16 aPanels;
    final VectorFloat16 scaledBPanels;
    final VectorFloat16 biasPanels;
    /** One-element placeholders for kernel arguments a schedule does not read. */
    final FloatArray noFloats = new FloatArray(1);
    final VectorFloat16 noPanels = new VectorFloat16(1);
    final VectorFloat16 noBiasPanels = new VectorFloat16(1);
    private final boolean panelAdapters;

    DeviceWeights(LayerSpec p, Schedule schedule) {
        in = p.inDim();
        out = p.outDim();
        rank = p.rank();
        kernelRank = Math.max(1, rank);
        scale = p.scale();
        switch (p.base()) {
            case Nf4Tensor q -> {
                int bs = q.blockSize();
                if (Integer.bitCount(bs) != 1) {
                    throw new IllegalArgumentException("the TornadoVM backend needs a power-of-two NF4 block_size, got " + bs);
                }
                nf4 = true;
                log2BlockSize = Integer.numberOfTrailingZeros(bs);
                w = new FloatArray(1);
                codes = ByteArray.fromArray(q.packedCodes());
                scales = FloatArray.fromArray(q.blockScales());
                codebook = FloatArray.fromArray(Nf4.codebook());
                forwardPanels = new VectorFloat16(1);
            }
            default -> {  // fp32, or 16-bit widened here: the device kernels read fp32 weights
                float[] dense = p.base() instanceof DenseWeight d ? d.data() : p.base().dequantize();
                nf4 = false;
                log2BlockSize = 0;
                codes = new ByteArray(1);
                scales = new FloatArray(1);
                codebook = new FloatArray(1);
                if (schedule == Schedule.CPU_PANELS) {
                    w = new FloatArray(1);
                    forwardPanels = Matmul.packPanels(dense, out, in, true);
                } else {
                    w = FloatArray.fromArray(dense);
                    forwardPanels = new VectorFloat16(1);
                }
            }
        }
        hasBias = p.bias() != null;
        bias = hasBias ? FloatArray.fromArray(p.bias()) : new FloatArray(1);
        a = new FloatArray(kernelRank * in);
        b = new FloatArray(out * kernelRank);
        backwardA = new FloatArray(kernelRank * in);
        backwardB = new FloatArray(out * kernelRank);
        panelAdapters = schedule == Schedule.CPU_PANELS;
        aPanels = panelAdapters ? new VectorFloat16(Schedule.ceilDiv(kernelRank, Matmul.PANEL) * in) : new VectorFloat16(1);
        scaledBPanels = panelAdapters ? new VectorFloat16(Schedule.ceilDiv(out, Matmul.PANEL) * kernelRank)
                : new VectorFloat16(1);
        biasPanels = panelAdapters && hasBias ? Matmul.packPanels(p.bias(), out, 1, true) : new VectorFloat16(1);
    }

    /** Bytes of the frozen base in its device form (what one device copy of the base costs). */
    long baseBytes() {
        return w.getNumBytesOfSegment() + codes.getNumBytesOfSegment() + scales.getNumBytesOfSegment()
                + forwardPanels.getArray().getNumBytesOfSegment();
    }

    /** The forward's adapters, copied in (the panel forms too on the CPU schedule); nothing when disabled. */
    void loadForward(Adapters ad) {
        if (ad == null) {
            return;
        }
        copyIn(ad.a(), a, a.getSize());
        copyIn(ad.b(), b, b.getSize());
        if (panelAdapters) {
            Matmul.packPanels(ad.a(), rank, in, true, 1f, aPanels);
            Matmul.packPanels(ad.b(), out, rank, true, scale, scaledBPanels);
        }
    }

    void loadBackward(Adapters ad) {
        if (ad != null) {
            copyIn(ad.a(), backwardA, backwardA.getSize());
            copyIn(ad.b(), backwardB, backwardB.getSize());
        }
    }

    static void copyIn(float[] src, FloatArray dst, int n) {
        MemorySegment.copy(src, 0, dst.getSegment(), ValueLayout.JAVA_FLOAT, 0, n);
    }

    static void copyOut(FloatArray src, float[] dst, int n) {
        MemorySegment.copy(src.getSegment(), ValueLayout.JAVA_FLOAT, 0, dst, 0, n);
    }
}
