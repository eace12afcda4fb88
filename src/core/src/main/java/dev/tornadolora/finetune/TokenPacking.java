package dev.tornadolora.finetune;

import dev.tornadolora.train.SettingException;
import java.util.List;

/**
 * Documents packed into fixed-length blocks, the plain way of pre-training-style fine-tunes: the documents'
 * tokens are joined into one stream with the end-of-sequence id after each document, and the stream is cut into
 * consecutive blocks of {@code seqLen}; the last partial block is dropped. Labels equal the ids (the loss shifts
 * by one), so a block may predict across a document boundary, as packed training does.
 * <pre>
 *   stream = d₀ ‖ eos ‖ d₁ ‖ eos ‖ …        block k = stream[k·S, (k+1)·S),  k &lt; ⌊|stream| / S⌋
 * </pre>
 */
public final class TokenPacking {
    private TokenPacking() {}

    /**
     * @param eos the id appended after every document; -1 (the config has none) joins them without a separator
     * @throws IllegalArgumentException naming {@code source} when there are no documents or fewer tokens than one block
     */
    public static TokenDataset pack(String source, List<int[]> documents, int eos, int seqLen) {
        if (seqLen < 2) throw new SettingException("{seq_len} must be >= 2, got " + seqLen);
        if (documents.isEmpty()) throw new IllegalArgumentException(source + ": no documents");
        long total = 0;
        for (int[] d : documents) total += d.length + (eos >= 0 ? 1 : 0);
        long blocks = total / seqLen;
        if (blocks == 0) {
            throw new SettingException(source + ": " + total + " tokens in all (with end-of-sequence ids) is"
                    + " shorter than one block of {seq_len} " + seqLen);
        }
        if (blocks > Integer.MAX_VALUE / 2) throw new IllegalArgumentException(source + ": too many blocks (" + blocks + ")");
        int[][] rows = new int[(int) blocks][seqLen];
        long pos = 0;
        for (int[] d : documents) {
            for (int i = 0; i <= d.length; i++) {
                int id;
                if (i < d.length) id = d[i];
                else if (eos >= 0) id = eos;
                else break;
                long b = pos / seqLen;
                if (b >= blocks) return TokenDataset.of(source, rows, null);
                rows[(int) b][(int) (pos % seqLen)] = id;
                pos++;
            }
        }
        return TokenDataset.of(source, rows, null);
    }
}
