package dev.tornadolora.llama;

import dev.tornadolora.io.DType;
import dev.tornadolora.io.SafeTensors;
import dev.tornadolora.tensor.Shapes;

import java.nio.ByteBuffer;

/** Token tensors (input_ids, labels) of a safetensors file: I64 or I32 [B, S], read as ints with range checks. */
public final class TokenTensors {
    /** Ids [B·S] row-major and the shape [B, S]. */
    public record Tokens(int batch, int seq, int[] values) {}

    private TokenTensors() {}

    public static Tokens read(SafeTensors st, String name) {
        SafeTensors.Entry e = st.entry(name);
        int[] shape = e.shape();
        if (shape.length != 2 || shape[0] == 0 || shape[1] == 0) {
            throw new IllegalArgumentException(st.source() + ": tensor '" + name + "' must have shape [B, S] with B, S > 0,"
                    + " got " + Shapes.format(shape));
        }
        ByteBuffer b = st.buffer(name);
        int n = e.numel();
        int[] v = new int[n];
        switch (e.dtype()) {
            case I64 -> {
                for (int i = 0; i < n; i++) {
                    long x = b.getLong(8 * i);
                    if (x < Integer.MIN_VALUE || x > Integer.MAX_VALUE) {
                        throw new IllegalArgumentException(st.source() + ": " + name + "[" + (i / shape[1]) + ", "
                                + (i % shape[1]) + "] = " + x + " is out of range");
                    }
                    v[i] = (int) x;
                }
            }
            case I32 -> {
                for (int i = 0; i < n; i++) v[i] = b.getInt(4 * i);
            }
            default -> throw new IllegalArgumentException(st.source() + ": tensor '" + name + "' has dtype " + e.dtype()
                    + ", expected I64 or I32");
        }
        return new Tokens(shape[0], shape[1], v);
    }

    /** Little-endian I64 bytes of ints, for writing token tensors. */
    public static byte[] i64(int[] values) {
        ByteBuffer b = ByteBuffer.allocate(8 * values.length).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        for (int x : values) b.putLong(x);
        return b.array();
    }

    static DType dtype(SafeTensors st, String name) {
        return st.entry(name).dtype();
    }
}
