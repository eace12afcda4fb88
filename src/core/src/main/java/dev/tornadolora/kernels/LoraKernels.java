package dev.tornadolora.kernels;

/**
 * The two operations of a LoRA layer, as every backend implements them. With x [T, in] (T tokens), the dropout
 * multiplier m [T, in] (0 or 1/(1-p) per element; null when there is no dropout) and s = alpha/rank:
 *
 * <pre>
 *   forward:   h  = (x ⊙ m) · Aᵀ                         [T, rank]
 *              y  = x · Wᵀ + b + s · h · Bᵀ               [T, out]
 *   backward:  dB += s · dyᵀ · h                          [out, rank]
 *              dh  = s · dy · B                           [T, rank]
 *              dA += dhᵀ · (x ⊙ m)                        [rank, in]
 *              dx  = dy · W + (dh · A) ⊙ m                [T, in]
 * </pre>
 *
 * W is never differentiated (it is frozen). Passing {@code h == null} to forward, or {@code gradA == null} to
 * backward, means the adapters are disabled: only the base path runs. {@code dx == null} skips the input
 * gradient. Outputs are overwritten; gradients accumulate. Implementations are stateless with respect to the
 * call, so one instance serves many layers and threads; they may cache derived forms of the frozen base.
 */
public interface LoraKernels {

    /** The backend's name as users select it: {@code reference}, {@code jvm}, {@code tornado:0:0}. */
    String name();

    void forward(LoraParams p, float[] x, float[] dropMultiplier, int tokens, float[] h, float[] y);

    void backward(LoraParams p, float[] x, float[] dropMultiplier, int tokens, float[] h, float[] dy,
                  float[] dx, float[] gradA, float[] gradB);
}
