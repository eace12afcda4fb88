package dev.tornadolora.tornado.plan;

import dev.tornadolora.kernels.LoraParams;
import dev.tornadolora.nf4.Nf4Tensor;
import dev.tornadolora.tensor.BaseWeight;
import dev.tornadolora.tensor.DenseWeight;
import dev.tornadolora.tornado.kernels.Matmul;
import uk.ac.manchester.tornado.api.types.arrays.ByteArray;
import uk.ac.manchester.tornado.api.types.collections.VectorFloat16;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import uk.ac.manchester.tornado.api.types.arrays.FloatArray;

/**
 * A layer's parameters as TornadoVM arrays. The frozen base (fp32 W, or NF4 codes + per-block scales) and the
 * bias are copied once and move to the device once; the adapters are refreshed from the layer before a run when
 * the layer's adapter version has moved. Unused roles hold one-element placeholders, so every kernel keeps one
 * signature whatever the base (kernel arguments are never null).
 */
final class DeviceWeights {
    final int in;
    final int out;
    final int rank;
    final float scale;
    final boolean nf4;
    final int log2BlockSize;
    final boolean hasBias;
    final FloatArray w;
    final ByteArray codes;
    final FloatArray scales;
    final FloatArray codebook;
    final FloatArray bias;
    final FloatArray a;
    final FloatArray b;
    /** W repacked for {@code Matmul.panels} (CPU schedule, fp32 base): B = Wᵀ forward, B = W backward. */
    final VectorFloat16 forwardPanels;
    final VectorFloat16 backwardPanels;
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
    private final BaseWeight baseSource;
    private final float[] biasSource;
    private long adapterVersion = Long.MIN_VALUE;

    DeviceWeights(LoraParams p, Schedule schedule) {
        baseSource = p.base();
        biasSource = p.bias();
        in = p.inDim();
        out = p.outDim();
        rank = p.rank();
        scale = p.scale();
        BaseWeight base = p.base();
        if (base instanceof Nf4Tensor q) {
            int bs = q.blockSize();
            if (Integer.bitCount(bs) != 1) {
                throw new IllegalArgumentException("the TornadoVM backend needs a power-of-two NF4 block_size, got " + bs);
            }
            nf4 = true;
            log2BlockSize = Integer.numberOfTrailingZeros(bs);
            w = new FloatArray(1);
            codes = ByteArray.fromArray(q.packedCodes());
            scales = FloatArray.fromArray(q.blockScales());
            float[] book = new float[16];
            for (int c = 0; c < 16; c++) book[c] = Nf4Tensor.codebook(c);
            codebook = FloatArray.fromArray(book);
            forwardPanels = backwardPanels = new VectorFloat16(1);
        } else {
            nf4 = false;
            log2BlockSize = 0;
            float[] dense = base instanceof DenseWeight d ? d.data() : base.dequantize();
            codes = new ByteArray(1);
            scales = new FloatArray(1);
            codebook = new FloatArray(1);
            if (schedule == Schedule.CPU_PANELS) {
                w = new FloatArray(1);
                forwardPanels = Matmul.packPanels(dense, out, in, true);
                backwardPanels = Matmul.packPanels(dense, in, out, false);
            } else {
                w = FloatArray.fromArray(dense);
                forwardPanels = backwardPanels = new VectorFloat16(1);
            }
        }
        hasBias = p.bias() != null;
        bias = hasBias ? FloatArray.fromArray(p.bias()) : new FloatArray(1);
        a = new FloatArray(rank * in);
        b = new FloatArray(out * rank);
        panelAdapters = schedule == Schedule.CPU_PANELS;
        aPanels = panelAdapters ? new VectorFloat16(Schedule.ceilDiv(rank, Matmul.PANEL) * in) : new VectorFloat16(1);
        scaledBPanels = panelAdapters ? new VectorFloat16(Schedule.ceilDiv(out, Matmul.PANEL) * rank) : new VectorFloat16(1);
        biasPanels = panelAdapters && hasBias ? Matmul.packPanels(p.bias(), out, 1, true) : new VectorFloat16(1);
    }

    /** Whether these arrays still mirror the layer's frozen base and bias (a load replaces them). */
    boolean mirrors(LoraParams p) {
        return p.base() == baseSource && p.bias() == biasSource && p.rank() == rank;
    }

    /** Copies the layer's adapters in when they changed since the last copy. */
    void refreshAdapters(LoraParams p) {
        if (p.adapterVersion() != adapterVersion) {
            copyIn(p.loraA(), a);
            copyIn(p.loraB(), b);
            if (panelAdapters) {
                Matmul.packPanels(p.loraA(), rank, in, true, 1f, aPanels);
                Matmul.packPanels(p.loraB(), out, rank, true, scale, scaledBPanels);
            }
            adapterVersion = p.adapterVersion();
        }
    }

    static void copyIn(float[] src, FloatArray dst) {
        MemorySegment.copy(src, 0, dst.getSegment(), ValueLayout.JAVA_FLOAT, 0, dst.getSize());
    }

    static void copyOut(FloatArray src, float[] dst) {
        MemorySegment.copy(src.getSegment(), ValueLayout.JAVA_FLOAT, 0, dst, 0, src.getSize());
    }
}
