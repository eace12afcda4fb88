package dev.tornadolora.llama;

import dev.tornadolora.llama.ops.CausalLmLoss;
import dev.tornadolora.tensor.HeapCheck;

import java.util.Locale;

/**
 * The heap a fine-tuning step of {@link LlamaForCausalLM} needs, from config.json and the options, before anything
 * large is read: what the model holds and what a step allocates, array by array (bytes):
 * <pre>
 *   weights       embed_tokens and lm_head (unless tied) as stored (2 bytes a value for BF16/F16, 4 for fp32);
 *                 the layer projections as stored, or NF4 (0.5 + 1/64 + 4/64 bytes: codes, int8 scalers, fp32
 *                 block scales); the norms fp32
 *   adapters      rank·(in + out) per adapted projection, fp32, four times: the values, their gradient and
 *                 AdamW's two moments
 *   activations   the step's high point in live arrays, floats a token (t tokens):
 *                   kept by a layer for its backward: 4h + 2·qDim + 2·kvDim + 3·intermediate (its input, the normed
 *                     input, q, k, v, attention, residual, normed residual, gate, up, SwiGLU; Qwen3's q/k norms
 *                     qDim + kvDim more) and, with dropout, each adapted projection's input-sized mask
 *                   without checkpointing every layer's, with it each layer's input (h) and one layer's (the
 *                     layer recomputed in backward)
 *                   + the final norm's input and the gradient into it (2h)
 *                   + the larger of the fused loss's chunk (chunk · (vocab + h) floats: logits, then their
 *                     gradient in place, and the chunk's input; chunk: Liger's rule,
 *                     {@link CausalLmLoss#chunkTokens}, plus a short last chunk's 15 rows) and one layer's
 *                     backward: its gradients
 *                     3·intermediate + 4h + 2·qDim + 2·kvDim (+ qDim + kvDim with q/k norms) and per attention
 *                     thread 6 seq × seq score matrices
 * </pre>
 * The estimate is of live arrays; the JVM's own memory (classes, threads, code) is not in it. {@link #weights} and
 * {@link #activations} are the forward command's bound (the full logits, fp32 weights).
 */
public record MemoryEstimate(long fp32Weights, long halfWeights, long nf4Weights, long adapters, long activations,
                             long activationsOther, boolean checkpointing, long batch, long seq) {

    /**
     * The estimate of a training step of {@code batch × seq} tokens.
     *
     * @param c             the configuration
     * @param lora          where the adapters go, and whether the projections are NF4
     * @param storedBytes   bytes a value of the checkpoint's matrices (2 for BF16/F16, 4 for fp32)
     * @param batch         rows per micro-batch
     * @param seq           tokens per row
     * @param checkpointing whether activation checkpointing is on
     * @param threads       the threads computing attention at once
     * @return the estimate
     */
    public static MemoryEstimate training(LlamaConfig c, LoraSettings lora, int storedBytes, long batch, long seq,
                                          boolean checkpointing, int threads) {
        long h = c.hiddenSize(), q = c.qDim(), kv = c.kvDim(), im = c.intermediateSize(), layers = c.numHiddenLayers();
        long perLayerProjections = 2 * h * q + 2 * h * kv + 3 * h * im;
        long embeddings = (long) c.vocabSize() * h * (c.tieWordEmbeddings() ? 1 : 2);
        long projections = layers * perLayerProjections;
        long fp32 = (2 * layers + 1) * h * 4;
        long half = 0;
        long nf4 = 0;
        if (storedBytes == 2) half += embeddings * 2; else fp32 += embeddings * 4;
        if (lora.quantizeBase()) nf4 = projections / 2 + projections / 64 + projections / 64 * 4;
        else if (storedBytes == 2) half += projections * 2;
        else fp32 += projections * 4;

        long adapterValues = 0, layerMaskFloats = 0;
        for (String p : LlamaConfig.PROJECTIONS) {
            if (!lora.targets(p)) continue;
            long in = p.equals("o_proj") ? q : p.equals("down_proj") ? im : h;
            long out = switch (p) {
                case "q_proj" -> q;
                case "k_proj", "v_proj" -> kv;
                case "gate_proj", "up_proj" -> im;
                default -> h;
            };
            adapterValues += layers * lora.rank() * (in + out);
            layerMaskFloats += in;
        }
        if (lora.output()) {
            adapterValues += lora.rank() * (h + c.vocabSize());
        }
        long adapters = HeapCheck.product(adapterValues, 4, 4);

        long tokens = HeapCheck.product(batch, seq);
        long qkNorm = c.parts().qkNorm() ? q + kv : 0;
        long kept = HeapCheck.product(tokens, 4 * h + 2 * q + 2 * kv + 3 * im + qkNorm
                + (lora.dropout() > 0 ? layerMaskFloats : 0));
        long chunk = Math.min(tokens, CausalLmLoss.chunkTokens(tokens, c.vocabSize(), c.hiddenSize())
                + CausalLmLoss.MIN_CHUNK_TOKENS - 1);
        long loss = HeapCheck.product(chunk, c.vocabSize() + h + (lora.output() && lora.dropout() > 0 ? h : 0));
        long layerBackward = HeapCheck.sum(HeapCheck.product(tokens, 3 * im + 4 * h + 2 * q + 2 * kv + qkNorm),
                HeapCheck.product(seq, seq, 6, Math.max(1, threads)));
        long finalNorm = HeapCheck.product(tokens, 2 * h);
        long without = HeapCheck.sum(HeapCheck.product(kept, layers), finalNorm, Math.max(loss, layerBackward));
        long with = HeapCheck.sum(HeapCheck.product(tokens, layers * h), finalNorm,
                Math.max(loss, HeapCheck.sum(kept, layerBackward)));
        with = HeapCheck.product(with, 4);
        without = HeapCheck.product(without, 4);
        return new MemoryEstimate(fp32, half, nf4, adapters, checkpointing ? with : without,
                checkpointing ? without : with, checkpointing, batch, seq);
    }

    /**
     * {@return bytes of the weights of a checkpoint stored in fp32} (the upper bound the forward command checks; a
     * BF16/F16 checkpoint holds less, see {@link #training})
     *
     * @param c            the configuration
     * @param quantizeBase whether the layer projections are NF4
     */
    public static long weights(LlamaConfig c, boolean quantizeBase) {
        return training(c, LoraSettings.none(quantizeBase), 4, 1, 1, false, 1).weights();
    }

    /** Heap per byte of live arrays of {@link #activations} (see there). */
    static final long HEADROOM = 2;

    /**
     * {@return bytes of activations a forward with the full logits (and with {@code training} the backward) of
     * batch × seq tokens needs}, ×{@link #HEADROOM}: per token 5h + 2·qDim + 2·kvDim + 3·intermediate + 2h floats
     * for the layer being computed and the final norm, 3·vocab floats of logits (the logits, the copy a caller
     * keeps, the bytes written), with training 3h + 3·qDim + 2·kvDim + 3·intermediate floats a layer kept for
     * backward; a seq × seq score matrix per thread. ×2: the parallel collector's old generation is 2/3 of the heap
     * and each activation is one large array that needs contiguous room.
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

    /** {@return bytes of the weights} */
    public long weights() {
        return fp32Weights + halfWeights + nf4Weights;
    }

    /** {@return bytes of everything: weights, adapters with their optimizer state, activations} */
    public long total() {
        return HeapCheck.sum(weights(), adapters, activations);
    }

    /** The estimate in one line, as finetune prints it before loading. */
    public String describe() {
        return String.format(Locale.ROOT, "memory estimate: weights %s (%s 16-bit, %s NF4, %s fp32), adapters + AdamW %s,"
                        + " activations %s for %d x %d tokens %s (%s %s) = %s", gib(weights()), gib(halfWeights),
                gib(nf4Weights), gib(fp32Weights), gib(adapters), gib(activations), batch, seq,
                checkpointing ? "with activation checkpointing" : "without activation checkpointing",
                gib(activationsOther), checkpointing ? "without" : "with", gib(total()));
    }

    static String gib(long bytes) {
        return String.format(Locale.ROOT, "%.2f GiB", bytes / (double) (1L << 30));
    }
}
