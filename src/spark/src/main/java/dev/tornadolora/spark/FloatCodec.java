package dev.tornadolora.spark;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Base64;

/**
 * Float arrays as the text that {@code BarrierTaskContext.allGather} carries: base64 of the little-endian IEEE-754
 * bytes, so a value travels bit for bit (4 bytes become 16/3 characters: 5.33 bytes a float on the wire, as
 * UTF-8). Decimal text would be longer and, unless printed with 9 digits, lossy.
 */
public final class FloatCodec {
    private FloatCodec() {}

    public static String encode(float[] values) {
        ByteBuffer b = ByteBuffer.allocate(Math.multiplyExact(values.length, Float.BYTES)).order(ByteOrder.LITTLE_ENDIAN);
        b.asFloatBuffer().put(values);
        return Base64.getEncoder().encodeToString(b.array());
    }

    /** The floats of {@code text}; exactly {@code expected} of them or an exception naming what came. */
    public static float[] decode(String text, int expected) {
        byte[] bytes;
        try {
            bytes = Base64.getDecoder().decode(text);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("gradient message is not base64: " + e.getMessage(), e);
        }
        if (bytes.length != (long) expected * Float.BYTES) {
            throw new IllegalArgumentException("gradient message holds " + bytes.length + " bytes, expected "
                    + (long) expected * Float.BYTES + " (" + expected + " floats)");
        }
        float[] v = new float[expected];
        ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(v);
        return v;
    }

    /** Characters (= bytes as UTF-8) of the encoding of {@code floats} values. */
    public static long encodedLength(long floats) {
        return (floats * Float.BYTES + 2) / 3 * 4;
    }
}
