package dev.tornadolora.io;

import java.util.Arrays;
import java.util.stream.Collectors;

/**
 * The element types of the safetensors format whose size is a whole number of bytes. Every one can be read and
 * copied; the loaders compute with F32, F16, BF16, U8 and I8. A header naming any other dtype is refused.
 */
public enum DType {
    /** Boolean, one byte. */ BOOL(1),
    /** Unsigned 8-bit integer. */ U8(1),
    /** Signed 8-bit integer. */ I8(1),
    /** 8-bit float, 5 exponent bits. */ F8_E5M2(1),
    /** 8-bit float, 4 exponent bits. */ F8_E4M3(1),
    /** Signed 16-bit integer. */ I16(2),
    /** Unsigned 16-bit integer. */ U16(2),
    /** IEEE half precision. */ F16(2),
    /** bfloat16: the upper half of an fp32. */ BF16(2),
    /** Signed 32-bit integer. */ I32(4),
    /** Unsigned 32-bit integer. */ U32(4),
    /** IEEE single precision. */ F32(4),
    /** IEEE double precision. */ F64(8),
    /** Signed 64-bit integer. */ I64(8),
    /** Unsigned 64-bit integer. */ U64(8);

    private final int size;

    DType(int size) {
        this.size = size;
    }

    /** {@return bytes per element} */
    public int size() {
        return size;
    }

    /**
     * The dtype of a header's name.
     *
     * @param name the name as the header writes it, e.g. {@code F32}
     * @return the dtype, or null when the format has none of that name here
     */
    public static DType byName(String name) {
        for (DType d : values()) {
            if (d.name().equals(name)) {
                return d;
            }
        }
        return null;
    }

    /** {@return the supported names, comma-separated, for messages} */
    public static String supported() {
        return Arrays.stream(values()).map(Enum::name).collect(Collectors.joining(", "));
    }
}
