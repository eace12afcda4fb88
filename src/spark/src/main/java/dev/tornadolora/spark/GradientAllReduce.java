package dev.tornadolora.spark;

import dev.tornadolora.nn.Parameter;

import java.util.List;

/**
 * All-reduce of the adapter gradients (and the step's loss) over an all-gather: every task sends
 * {@code lossBits|tag|base64(gradients)} (the tag: a short text that travels along, e.g. a checksum), receives
 * every task's message, and sums them itself in rank order
 * <pre>
 *   g = ((0 + g₀) + g₁) + … + g_{N−1}      (fp32, element by element)      loss = Σ_r loss_r   (double, same order)
 * </pre>
 * so every replica computes the same bits. With one task, g = g₀ exactly: the single-process gradient.
 *
 * <p>Traffic per step: each task sends M = ⌈4P/3⌉·4 bytes for P trainable floats and receives N·M; through the
 * barrier coordinator (on the driver) that is N·M in and N²·M out.
 */
public final class GradientAllReduce {
    private final Collective collective;
    private final List<Parameter> params;
    private final int numel;
    private long bytesSent;
    private long bytesReceived;

    public GradientAllReduce(Collective collective, List<Parameter> params) {
        this.collective = collective;
        this.params = List.copyOf(params);
        long n = 0;
        for (Parameter p : params) n += p.numel();
        this.numel = Math.toIntExact(n);
    }

    /** The summed loss and every rank's tag (index = rank). */
    public record Sum(double loss, String[] tags) {}

    /** Replaces every parameter's gradient by the sum over all tasks; {@code tag} must not contain '|'. */
    public Sum sum(double localLoss, String tag) {
        if (tag.indexOf('|') >= 0) throw new IllegalArgumentException("tag must not contain '|': " + tag);
        String mine = Long.toHexString(Double.doubleToRawLongBits(localLoss)) + "|" + tag + "|" + FloatCodec.encode(flatten());
        String[] all = collective.allGather(mine);
        bytesSent += mine.length();
        float[] total = new float[numel];
        double loss = 0;
        String[] tags = new String[all.length];
        for (int r = 0; r < all.length; r++) {
            String m = all[r];
            bytesReceived += m.length();
            int bar = m.indexOf('|'), bar2 = bar < 0 ? -1 : m.indexOf('|', bar + 1);
            if (bar2 < 0) throw new IllegalStateException("all-reduce: malformed message from rank " + r);
            loss += Double.longBitsToDouble(Long.parseUnsignedLong(m.substring(0, bar), 16));
            tags[r] = m.substring(bar + 1, bar2);
            float[] g = FloatCodec.decode(m.substring(bar2 + 1), numel);
            for (int i = 0; i < numel; i++) total[i] += g[i];
        }
        scatter(total);
        return new Sum(loss, tags);
    }

    /** Trainable floats per replica. */
    public int numel() {
        return numel;
    }

    public long bytesSent() {
        return bytesSent;
    }

    public long bytesReceived() {
        return bytesReceived;
    }

    private float[] flatten() {
        float[] flat = new float[numel];
        int off = 0;
        for (Parameter p : params) {
            System.arraycopy(p.grad(), 0, flat, off, p.numel());
            off += p.numel();
        }
        return flat;
    }

    private void scatter(float[] flat) {
        int off = 0;
        for (Parameter p : params) {
            System.arraycopy(flat, off, p.grad(), 0, p.numel());
            off += p.numel();
        }
    }
}
