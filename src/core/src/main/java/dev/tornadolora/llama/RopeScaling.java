package dev.tornadolora.llama;

/**
 * The {@code llama3} rotary scaling of Hugging Face's {@code _compute_llama3_parameters} (Llama 3.1): with
 * {@code wavelen = 2π / inv_freq}, {@code low = original / lowFreqFactor}, {@code high = original / highFreqFactor},
 * <pre>
 *   wavelen &lt; high            inv_freq                        (high frequencies kept)
 *   wavelen &gt; low             inv_freq / factor               (low frequencies scaled)
 *   otherwise                 (1 − s) · inv_freq / factor + s · inv_freq,
 *                             s = (original / wavelen − lowFreqFactor) / (highFreqFactor − lowFreqFactor)
 * </pre>
 * The attention factor is 1. Other rope types (linear, dynamic, yarn, longrope) are refused by name.
 */
public record RopeScaling(double factor, double lowFreqFactor, double highFreqFactor, int originalMaxPositionEmbeddings) {

    public static final String TYPE = "llama3";

    public RopeScaling {
        if (!(factor > 0) || !Double.isFinite(factor)) {
            throw new IllegalArgumentException("rope_scaling.factor must be a positive finite number, got " + factor);
        }
        if (!(lowFreqFactor > 0) || !Double.isFinite(lowFreqFactor)
                || !(highFreqFactor > lowFreqFactor) || !Double.isFinite(highFreqFactor)) {
            throw new IllegalArgumentException("rope_scaling needs 0 < low_freq_factor < high_freq_factor (finite), got "
                    + lowFreqFactor + " and " + highFreqFactor);
        }
        if (originalMaxPositionEmbeddings <= 0) {
            throw new IllegalArgumentException("rope_scaling.original_max_position_embeddings must be positive, got "
                    + originalMaxPositionEmbeddings);
        }
    }
}
