package dev.tornadolora.spark;

import dev.tornadolora.nn.Parameter;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.List;
import java.util.zip.CRC32;

/** CRC32 of the trainable values' little-endian fp32 bytes, in parameter order: equal bits, equal checksum. */
public final class ReplicaChecksum {
    private ReplicaChecksum() {}

    public static long of(List<Parameter> params) {
        CRC32 crc = new CRC32();
        for (Parameter p : params) {
            ByteBuffer b = ByteBuffer.allocate(p.numel() * Float.BYTES).order(ByteOrder.LITTLE_ENDIAN);
            b.asFloatBuffer().put(p.data());
            crc.update(b.array());
        }
        return crc.getValue();
    }
}
