package dev.tornadolora.io;

/** The safetensors element types this project reads and writes. */
public enum DType {
    F32(4), F16(2), BF16(2), U8(1), I8(1), I32(4), I64(8);

    private final int size;

    DType(int size) {
        this.size = size;
    }

    public int size() {
        return size;
    }

    /** Parses a header's dtype string; unknown names throw with the name and the supported list. */
    public static DType parse(String name, String tensor) {
        try {
            return valueOf(name);
        } catch (IllegalArgumentException e) {
            throw new SafeTensorsException("tensor '" + tensor + "': unsupported dtype '" + name
                    + "' (supported: F32, F16, BF16, U8, I8, I32, I64)");
        }
    }
}
