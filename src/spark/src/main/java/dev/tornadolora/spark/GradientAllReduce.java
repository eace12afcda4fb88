package dev.tornadolora.spark;

import dev.tornadolora.nn.Parameter;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.List;

/**
 * All-reduce of the adapter gradients and the step's loss: the gradients, flattened in parameter order, are
 * summed by the {@link Collective} in rank order; the loss (and a tag, e.g. a checksum) rides along as the
 * stamp {@code lossBits(8, little-endian) + UTF-8 tag}, and every replica sums the losses itself in rank order
 * <pre>
 *   g = ((0 + g₀) + g₁) + … + g_{N−1}      (fp32, element by element)      loss = Σ_r loss_r   (double, same order)
 * </pre>
 * so every replica computes the same bits. With one task, g = g₀ exactly: the single-process gradient.
 */
public final class GradientAllReduce {
    private final Collective collective;
    private final List<Parameter> params;
    private final int numel;
    private final float[] flat;
    private long bytesSent;
    private long bytesReceived;

    public GradientAllReduce(Collective collective, List<Parameter> params) {
        this.collective = collective;
        this.params = List.copyOf(params);
        long n = 0;
        for (Parameter p : params) n += p.numel();
        this.numel = Math.toIntExact(n);
        this.flat = new float[numel];
    }

    /** The summed loss and every rank's tag (index = rank). */
    public record Sum(double loss, String[] tags) {}

    /** Replaces every parameter's gradient by the sum over all tasks. */
    public Sum sum(double localLoss, String tag) {
        flatten();
        byte[] t = tag.getBytes(StandardCharsets.UTF_8);
        byte[] stamp = ByteBuffer.allocate(Double.BYTES + t.length).order(ByteOrder.LITTLE_ENDIAN)
                .putDouble(localLoss).put(t).array();
        Collective.Reduced r = collective.sumInRankOrder(flat, stamp);
        bytesSent += r.bytesSent();
        bytesReceived += r.bytesReceived();
        double loss = 0;
        String[] tags = new String[r.stamps().length];
        for (int q = 0; q < tags.length; q++) {
            byte[] s = r.stamps()[q];
            if (s.length < Double.BYTES) throw new IllegalStateException("all-reduce: rank " + q + " sent no loss");
            loss += ByteBuffer.wrap(s).order(ByteOrder.LITTLE_ENDIAN).getDouble();
            tags[q] = new String(s, Double.BYTES, s.length - Double.BYTES, StandardCharsets.UTF_8);
        }
        scatter();
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

    private void flatten() {
        int off = 0;
        for (Parameter p : params) {
            System.arraycopy(p.grad(), 0, flat, off, p.numel());
            off += p.numel();
        }
    }

    private void scatter() {
        int off = 0;
        for (Parameter p : params) {
            System.arraycopy(flat, off, p.grad(), 0, p.numel());
            off += p.numel();
        }
    }
}
