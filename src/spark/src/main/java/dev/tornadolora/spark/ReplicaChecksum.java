package dev.tornadolora.spark;

import dev.tornadolora.nn.Parameter;
import dev.tornadolora.tensor.BaseWeight;
import dev.tornadolora.tensor.DenseWeight;
import dev.tornadolora.tensor.HalfWeight;
import dev.tornadolora.tensor.Nf4Tensor;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Collection;
import java.util.List;
import java.util.zip.CRC32;

/** CRC32s that prove replicas hold the same bits: equal bits, equal checksum. */
public final class ReplicaChecksum {
    private ReplicaChecksum() {}

    /** CRC32 of the trainable values' little-endian fp32 bytes, in parameter order. */
    public static long of(List<Parameter> params) {
        CRC32 crc = new CRC32();
        for (Parameter p : params) update(crc, p.data());
        return crc.getValue();
    }

    /**
     * CRC32 of the NF4 records among {@code bases} (codes, int8 scalers, quantization factors, μ), in order: what
     * each replica computed when it quantized the base itself. Dense and 16-bit weights are skipped (read from the
     * same files, not computed); 0 when there is no NF4 base. It reads the ~0.53 bytes per parameter of the records once.
     */
    public static long ofBases(Collection<BaseWeight> bases) {
        CRC32 crc = new CRC32();
        boolean any = false;
        for (BaseWeight w : bases) {
            switch (w) {
                case Nf4Tensor t -> {
                    crc.update(t.packedCodes());
                    crc.update(t.quantizedScalers());
                    update(crc, t.quantizationFactor());
                    update(crc, new float[] {t.scalerMean()});
                    any = true;
                }
                case DenseWeight d -> { }
                case HalfWeight h -> { }  // 16-bit as stored: read from the same files too
            }
        }
        return any ? crc.getValue() : 0;
    }

    private static void update(CRC32 crc, float[] values) {
        ByteBuffer b = ByteBuffer.allocate(values.length * Float.BYTES).order(ByteOrder.LITTLE_ENDIAN);
        b.asFloatBuffer().put(values);
        crc.update(b.array());
    }
}
