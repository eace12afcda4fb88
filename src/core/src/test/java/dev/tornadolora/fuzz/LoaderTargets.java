package dev.tornadolora.fuzz;

import dev.tornadolora.math.Nf4;
import dev.tornadolora.io.DType;
import dev.tornadolora.io.LoraCheckpoint;
import dev.tornadolora.io.Nf4Record;
import dev.tornadolora.io.SafeTensors;
import dev.tornadolora.kernels.ScalarLoraKernels;
import dev.tornadolora.tensor.Nf4Tensor;
import dev.tornadolora.nn.LoRALinear;
import dev.tornadolora.tensor.Tensor;

import java.nio.ByteBuffer;
import java.util.Arrays;

/**
 * The read paths a downloaded file takes, as fuzz targets. Once the header parses, every later step (each tensor,
 * each NF4 record, the LoRA checkpoint and a forward/backward through it) is tried on its own, so one rejected
 * step does not hide the others. What is read is also checked against the header, so a wrong result fails too.
 */
final class LoaderTargets {
    private LoaderTargets() {}

    /** The safetensors reader and everything built on it. Throws only IllegalArgumentException for a bad file. */
    static void readAll(byte[] file) {
        SafeTensors st = SafeTensors.parse("fuzz", ByteBuffer.wrap(file));
        readAll(st, file.length);
    }

    static void readAll(SafeTensors st, long fileBytes) {
        long total = 0;
        for (String name : st.names()) {
            SafeTensors.Entry e = st.entry(name);
            total += e.end() - e.begin();
            attempt(() -> readTensor(st, e));
        }
        check(total <= fileBytes, "tensors claim " + total + " bytes of a " + fileBytes + "-byte file");
        for (String name : st.names()) {
            if (name.endsWith(Nf4Record.QUANTIZED_DATA)) {
                String key = name.substring(0, name.length() - Nf4Record.QUANTIZED_DATA.length());
                attempt(() -> checkDecode(Nf4Record.read(st, key)));
            }
        }
        if (st.contains("lora_a.weight")) {
            attempt(() -> runLayer(LoraCheckpoint.read(st)));
        }
    }

    private static void readTensor(SafeTensors st, SafeTensors.Entry e) {
        ByteBuffer b = st.buffer(e.name());
        check(b.remaining() == e.end() - e.begin(), e.name() + ": buffer of " + b.remaining() + " bytes");
        byte[] raw = st.bytes(e.name(), e.dtype());
        check(raw.length == (long) e.numel() * e.dtype().size(), e.name() + ": " + raw.length + " bytes");
        if (e.dtype() == DType.F32 || e.dtype() == DType.F16 || e.dtype() == DType.BF16) {
            Tensor t = st.floats(e.name());
            check(Arrays.equals(t.shape(), e.shape()), e.name() + ": shape " + Arrays.toString(t.shape()));
            if (e.dtype() == DType.F32 && t.numel() > 0) {
                float first = ByteBuffer.wrap(raw).order(java.nio.ByteOrder.LITTLE_ENDIAN).getFloat(0);
                check(Float.floatToRawIntBits(first) == Float.floatToRawIntBits(t.data()[0]), e.name() + ": value");
            }
        }
    }

    /**
     * Decodes every row and compares with the record's definition, computed here from the stored parts:
     * element e of block b in scaler block j is NF4[code(e)] · (q_b / qf_j + μ), and finite.
     */
    static void checkDecode(Nf4Tensor t) {
        float[] row = new float[t.cols()];
        for (int r = 0; r < t.rows(); r++) {
            t.decodeRows(r, 1, row);
            for (int c = 0; c < t.cols(); c++) {
                int e = r * t.cols() + c, b = e / t.blockSize();
                int packed = t.packedCodes()[e / 2] & 0xFF;
                int code = e % 2 == 0 ? packed >> 4 : packed & 0xF;
                float scale = t.quantizedScalers()[b] / t.quantizationFactor()[b / t.scalerBlockSize()] + t.scalerMean();
                float expected = Nf4.codebook(code) * scale;
                check(Float.isFinite(row[c]) && Float.floatToRawIntBits(row[c]) == Float.floatToRawIntBits(expected),
                        "element " + e + " decodes to " + row[c] + ", expected " + expected);
            }
        }
    }

    /** A forward and backward of two tokens on the reference kernels: shapes and finiteness follow the file. */
    private static void runLayer(LoRALinear layer) {
        layer.backend(ScalarLoraKernels.INSTANCE).eval();
        float[] x = new float[2 * layer.inDim()];
        Arrays.fill(x, 0.5f);
        Tensor y = layer.forward(new Tensor(new int[] {2, layer.inDim()}, x));
        check(Arrays.equals(y.shape(), new int[] {2, layer.outDim()}), "y shape " + Arrays.toString(y.shape()));
        float[] dy = new float[2 * layer.outDim()];
        Arrays.fill(dy, 1f);
        Tensor dx = layer.backward(new Tensor(new int[] {2, layer.outDim()}, dy));
        check(Arrays.equals(dx.shape(), new int[] {2, layer.inDim()}), "dx shape " + Arrays.toString(dx.shape()));
    }

    /** Runs a step that may reject the file, with a message, and goes on. */
    private static void attempt(Runnable step) {
        try {
            step.run();
        } catch (IllegalArgumentException e) {
            if (e.getMessage() == null || e.getMessage().isBlank()) {
                throw new AssertionError("rejected without a message", e);
            }
            FuzzHarness.noteRejection(e.getMessage());
        }
    }

    /** A wrong result: not a documented rejection, so it is reported as a failure. */
    private static void check(boolean ok, String what) {
        if (!ok) {
            throw new AssertionError("wrong result: " + what);
        }
    }
}
