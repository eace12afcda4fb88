package dev.tornadolora.io;

import java.util.Arrays;
import java.util.stream.Collectors;

/**
 * The element types of the safetensors format whose size is a whole number of bytes. Every one can be read and
 * copied; the loaders compute with F32, F16, BF16, U8 and I8. A header naming any other dtype is refused.
 */
public enum DType {
    BOOL(1), U8(1), I8(1), F8_E5M2(1), F8_E4M3(1), I16(2), U16(2), F16(2), BF16(2), I32(4), U32(4), F32(4),
    F64(8), I64(8), U64(8);

    private final int size;

    DType(int size) {
        this.size = size;
    }

    public int size() {
        return size;
    }

    /** The dtype named {@code name} in a header, or null when the format has none of that name here. */
    public static DType byName(String name) {
        for (DType d : values()) {
            if (d.name().equals(name)) {
                return d;
            }
        }
        return null;
    }

    /** The supported names, for messages. */
    public static String supported() {
        return Arrays.stream(values()).map(Enum::name).collect(Collectors.joining(", "));
    }
}
