package dev.tornadolora.spark;

import dev.tornadolora.nn.Parameter;
import dev.tornadolora.tensor.BaseWeight;
import dev.tornadolora.tensor.DenseWeight;
import dev.tornadolora.tensor.Nf4Tensor;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The NF4 base's digest: equal for the same quantization, compared by the first check before any update. */
class BaseDigestTest {
    static float[] weights(long seed, int n) {
        SplittableRandom rng = new SplittableRandom(seed);
        float[] w = new float[n];
        for (int i = 0; i < n; i++) w[i] = (float) rng.nextGaussian();
        return w;
    }

    @Test
    void theDigestCoversTheNf4RecordsOnly() {
        float[] w = weights(1, 64 * 256);
        long a = ReplicaChecksum.ofBases(List.of(Nf4Tensor.quantize(w, 64, 256), new DenseWeight(2, 2, new float[4])));
        long b = ReplicaChecksum.ofBases(List.of(Nf4Tensor.quantize(w.clone(), 64, 256), new DenseWeight(2, 2, new float[] {1, 2, 3, 4})));
        assertEquals(a, b, "the same quantization (dense weights are not part of it)");
        float[] w2 = w.clone();
        w2[5] *= 1.5f;
        assertNotEquals(a, ReplicaChecksum.ofBases(List.of(Nf4Tensor.quantize(w2, 64, 256))), "another weight, another digest");
        assertEquals(0, ReplicaChecksum.ofBases(List.<BaseWeight>of(new DenseWeight(2, 2, new float[4]))), "no NF4: no digest");
    }

    @Test
    void replicasWithDifferentBasesStopAtTheFirstCheck() throws Exception {
        List<Future<Double>> results = PeerMeshTest.onMeshes(2, PeerMeshTest.FAST, mesh -> {
            Parameter p = new Parameter("a", new int[] {4}, new float[4], new float[] {1, 2, 3, 4});
            long digest = ReplicaChecksum.ofBases(List.of(Nf4Tensor.quantize(weights(10 + mesh.rank(), 64 * 256), 64, 256)));
            DataParallelStep dp = new DataParallelStep(mesh, List.of(p), 2, 5, 0, digest);
            return dp.allReduce(1, 0.5);
        });
        for (Future<Double> f : results) {
            ExecutionException e = assertThrows(ExecutionException.class, f::get);
            assertInstanceOf(ReplicaDivergedException.class, e.getCause());
            assertTrue(e.getCause().getMessage().contains("same resume point and base"), e.getCause().getMessage());
        }
        List<Future<Double>> same = PeerMeshTest.onMeshes(2, PeerMeshTest.FAST, mesh -> {
            Parameter p = new Parameter("a", new int[] {4}, new float[4], new float[] {1, 2, 3, 4});
            long digest = ReplicaChecksum.ofBases(List.of(Nf4Tensor.quantize(weights(10, 64 * 256), 64, 256)));
            return new DataParallelStep(mesh, List.of(p), 2, 5, 0, digest).allReduce(1, 0.5);
        });
        for (Future<Double> f : same) assertEquals(1.0, f.get(), "the summed loss");
    }
}
