package dev.tornadolora.kernels.jvm;

import dev.tornadolora.tensor.BaseWeight;
import dev.tornadolora.tensor.DenseWeight;
import dev.tornadolora.tensor.HalfWeight;
import dev.tornadolora.tensor.Nf4Tensor;

/**
 * The fp32 elements of a base weight held in a narrower format (NF4, BF16, F16), decoded piece by piece into a
 * kernel's buffer: the one place the kernels choose a decoder by the weight's kind.
 */
final class WeightDecoder {
    private WeightDecoder() {}

    /** dst[off + i] = W.flat[e0 + i] for i &lt; count. */
    static void decode(BaseWeight w, int e0, int count, float[] dst, int off) {
        switch (w) {
            case Nf4Tensor q -> Nf4Decoder.decode(q, e0, count, dst, off);
            case HalfWeight h -> h.decode(e0, count, dst, off);
            case DenseWeight d -> System.arraycopy(d.data(), e0, dst, off, count);
        }
    }
}
