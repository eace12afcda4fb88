package dev.tornadolora.io;

import dev.tornadolora.nf4.Nf4Tensor;
import dev.tornadolora.tensor.Shapes;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * Stop-gap NF4 record I/O (issue 3's layout: KEY.quantized_data U8, KEY.quantized_scalers I8,
 * KEY.quantization_factor F32, KEY.scaler_mean F32 [], metadata block_size / scaler_block_size / KEY.shape)
 * until the shared Nf4Record lands; then callers switch to it and this class goes.
 */
final class Nf4Io {
    private Nf4Io() {}

    static boolean present(SafeTensors f, String key) {
        return f.contains(key + ".quantized_data");
    }

    static void write(SafeTensorsWriter w, String key, Nf4Tensor t) {
        ByteBuffer factors = ByteBuffer.allocate(4 * t.quantizationFactor().length).order(ByteOrder.LITTLE_ENDIAN);
        factors.asFloatBuffer().put(t.quantizationFactor());
        w.raw(key + ".quantized_data", DType.U8, new int[] {t.packedCodes().length}, t.packedCodes())
         .raw(key + ".quantized_scalers", DType.I8, new int[] {t.quantizedScalers().length}, t.quantizedScalers())
         .raw(key + ".quantization_factor", DType.F32, new int[] {t.quantizationFactor().length}, factors.array())
         .f32(key + ".scaler_mean", new int[0], new float[] {t.scalerMean()})
         .metadata("block_size", Integer.toString(t.blockSize()))
         .metadata("scaler_block_size", Integer.toString(t.scalerBlockSize()))
         .metadata(key + ".shape", Shapes.format(t.rows(), t.cols()));
    }

    static Nf4Tensor read(SafeTensors f, String key, int rows, int cols) {
        int bs = Integer.parseInt(f.requireMetadata("block_size").trim());
        int sbs = Integer.parseInt(f.requireMetadata("scaler_block_size").trim());
        float[] qf = f.f32(key + ".quantization_factor").data();
        float mean = f.f32(key + ".scaler_mean").data()[0];
        return new Nf4Tensor(rows, cols, bs, sbs, f.bytes(key + ".quantized_data", DType.U8),
                f.bytes(key + ".quantized_scalers", DType.I8), qf, mean);
    }
}
