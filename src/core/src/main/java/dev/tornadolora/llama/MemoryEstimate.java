package dev.tornadolora.llama;

import dev.tornadolora.tensor.HeapCheck;

/**
 * The heap a Llama job needs, estimated from config.json and the options before anything large is read or
 * computed, so that a batch too large for the heap is refused in milliseconds with the number and the option to
 * change instead of running for a minute into an {@link OutOfMemoryError}. The estimate follows what
 * {@link LlamaForCausalLM} allocates (float arrays of activations per token) and errs high:
 * <pre>
 *   weights      embedding (+ lm_head unless tied) fp32, layer projections fp32 or NF4 (~0.56 bytes per value)
 *   forward      per token: 5h + 2·qDim + 2·kvDim + 3·intermediate floats for the layer being computed (its input,
 *                norm, q, k, v, attention, residual, norm, gate, up, SwiGLU, output), 2h for the final norm,
 *                3·vocab floats of logits (the logits, the copy a caller keeps, the bytes written), and a
 *                seq × seq score matrix per thread
 *   training     per token and layer: 3h + 3·qDim + 2·kvDim + 3·intermediate floats kept for backward
 *   headroom     ×2: the parallel collector's old generation is 2/3 of the heap and each activation is one
 *                large array that needs contiguous room (a [256, 4096] forward of a 32-wide model estimated at
 *                3.3 GiB ran out of memory in a 5.8 GiB heap)
 * </pre>
 */
public final class MemoryEstimate {
    /** Heap per byte of live arrays (see the class comment). */
    static final long HEADROOM = 2;

    private MemoryEstimate() {}

    /**
     * {@return bytes of fp32/NF4 weights the model holds}
     *
     * @param c            the configuration
     * @param quantizeBase whether the layer projections are NF4
     */
    public static long weights(LlamaConfig c, boolean quantizeBase) {
        long h = c.hiddenSize();
        long perLayer = h * c.qDim() + 2L * h * c.kvDim() + (long) c.qDim() * h + 3L * h * c.intermediateSize();
        long embeddings = (long) c.vocabSize() * h * (c.tieWordEmbeddings() ? 1 : 2);
        long layers = c.numHiddenLayers() * (quantizeBase ? perLayer * 9 / 16 : perLayer * 4);
        return HeapCheck.sum(HeapCheck.product(embeddings + (c.numHiddenLayers() * 2L + 1) * h, 4), layers);
    }

    /**
     * {@return bytes of activations a forward (and with {@code training} the backward) of batch × seq tokens needs}
     *
     * @param c        the configuration
     * @param batch    rows
     * @param seq      tokens per row
     * @param training whether the activations are kept for backward
     * @param threads  the threads computing attention at once (each holds a seq × seq score matrix)
     */
    public static long activations(LlamaConfig c, long batch, long seq, boolean training, int threads) {
        long tokens = HeapCheck.product(batch, seq);
        long h = c.hiddenSize(), q = c.qDim(), kv = c.kvDim(), i = c.intermediateSize();
        long layer = 5 * h + 2 * q + 2 * kv + 3 * i + 2 * h;
        long kept = training ? c.numHiddenLayers() * (3 * h + 3 * q + 2 * kv + 3 * i) : 0;
        long perToken = layer + kept + 3L * c.vocabSize();
        long scores = HeapCheck.product(seq, seq, Math.max(1, threads), training ? 6 : 2);
        return HeapCheck.product(HeapCheck.sum(HeapCheck.product(tokens, perToken), scores), 4, HEADROOM);
    }
}
