package dev.tornadolora.tensor;

/** bfloat16: the upper 16 bits of an fp32 (sign, 8-bit exponent, 7-bit mantissa), held as raw bits in a short. */
public final class BFloat16 {
    private BFloat16() {}

    /** Rounds to the nearest bf16, ties to even, as torch's {@code .to(torch.bfloat16)}; NaN stays a quiet NaN. */
    public static short fromFloat(float v) {
        if (Float.isNaN(v)) {
            return (short) 0x7FC0;
        }
        int bits = Float.floatToRawIntBits(v);
        return (short) ((bits + 0x7FFF + ((bits >>> 16) & 1)) >>> 16);
    }

    public static float toFloat(short bits) {
        return Float.intBitsToFloat((bits & 0xFFFF) << 16);
    }
}
